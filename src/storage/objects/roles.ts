/**
 * Role changes of the object store: a destination adopts the CPs its source
 * sends, a destination is promoted to a source, and a source whose
 * destination was promoted over it is fenced for good.
 *
 * @example
 * ```ts
 * declare const ctx: RoleContext;
 * await promote(ctx); // the destination's log replayed, the generation raised, a CP committed
 * await fence(ctx, "the destination was promoted", 900, "data/source/quarantine");
 * ```
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { RefsyncError } from "../../errors/mod.ts";
import { Catalog } from "../catalog/mod.ts";
import type { DataDir } from "../datadir/mod.ts";
import type { CpLifecycle } from "./cp-lifecycle.ts";
import { replay } from "./recovery.ts";
import { assertOpen, type StoreParts } from "./state.ts";
import type { CheckpointResult } from "./types.ts";

/** What a role change touches. */
export interface RoleContext extends StoreParts {
  dataDir: DataDir;
  cps: CpLifecycle;
}

/** See {@link ObjectStore.adoptCommitted}. */
export function adoptCommitted(
  ctx: RoleContext,
  cp: number,
  released: number[],
  lsnCovered: number,
): void {
  const { state, volume } = ctx;
  assert(state.mirror, "only a mirror adopts CPs from its source");
  state.catalog = new Catalog(volume, volume.superblock.catalogRoot);
  ctx.reads.clearEtags();
  state.generation = volume.superblock.pairGeneration;
  state.stats.cp.committed = cp;
  ctx.reclamation.retire({ cp, blocks: released, lsn: lsnCovered, synced: true });
  ctx.reclamation.collect();
}

/** See {@link ObjectStore.promote}. */
export async function promote(ctx: RoleContext): Promise<CheckpointResult | null> {
  const { state, volume, log } = ctx;
  if (!state.mirror) {
    throw new RefsyncError("conflict", "this appliance is already a source");
  }
  const started = ctx.clock.monotonic();
  const generation = volume.superblock.pairGeneration + 1;
  // Just after a catch-up the log may end below what the CP covers (those records are in the
  // CP): the promoted side's writes must follow the CP, or recovery would skip them as covered.
  const covered = volume.superblock.lsnCovered;
  if (log.lastLsn < covered) await log.reset(covered);
  // The role first: after a crash before the CP below, the directory starts only as a
  // source, which replays the same log and commits the raised generation.
  ctx.dataDir.promote(generation);
  state.mirror = false;
  state.generation = generation;
  replay(log, volume.superblock.lsnCovered + 1, ctx.layers);
  state.stats.lsn.last = log.lastLsn;
  state.stats.lsn.acked = log.lastLsn;
  const result = await ctx.cps.checkpoint(true);
  ctx.logger.info("promotion", {
    data: ctx.dataDir.path,
    cp: volume.superblock.cp,
    pairGeneration: generation,
    lsn: log.lastLsn,
    durationMs: Math.round(ctx.clock.monotonic() - started),
  });
  return result;
}

/** See {@link ObjectStore.fence}. */
export async function fence(
  ctx: RoleContext,
  reason: string,
  keepLsn: number,
  quarantineDir: string,
): Promise<{ file: string; firstLsn: number; lastLsn: number } | null> {
  const { state, volume, log, layers } = ctx;
  assertOpen(state);
  state.fenced = reason;
  // A running CP is abandoned by its mirror (mirrorHolds rejects) or has committed.
  await ctx.cps.running?.catch(() => {});
  const keep = Math.max(keepLsn, volume.superblock.lsnCovered);
  const lastLsn = log.lastLsn;
  if (lastLsn <= keep) return null;
  const file = await log.copyFramesAfter(keep, quarantineDir);
  await log.truncateAfter(keep);
  layers.clearActive();
  replay(log, volume.superblock.lsnCovered + 1, layers);
  state.stats.lsn.last = log.lastLsn;
  state.stats.lsn.acked = Math.min(state.stats.lsn.acked, log.lastLsn);
  return { file, firstLsn: keep + 1, lastLsn };
}

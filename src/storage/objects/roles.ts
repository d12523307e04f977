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
): Promise<SetAside | null> {
  const { state, volume, log, layers } = ctx;
  assertOpen(state);
  state.fenced = reason;
  // A running CP is abandoned by its mirror (mirrorHolds rejects) or has committed.
  await ctx.cps.running?.catch(() => {});
  const aside = await setAsideLogAfter(
    ctx,
    Math.max(keepLsn, volume.superblock.lsnCovered),
    quarantineDir,
  );
  if (aside === null) return null;
  layers.clearActive();
  replay(log, volume.superblock.lsnCovered + 1, layers);
  return aside;
}

/** What {@link setAsideLogAfter} set aside. */
export interface SetAside {
  /** Null when the log held no record above `keep` (it only ended there). */
  file: string | null;
  firstLsn: number;
  lastLsn: number;
}

/**
 * Sets the log records above `keep` aside: copied to
 * `quarantineDir/<first LSN>.seg` (frames as in the log), then cut from the
 * log. A fenced source does it with the tail its promoted destination never
 * received; a rejoining destination (a failback) with its divergent tail.
 * Null when the log ends at or below `keep`.
 */
export async function setAsideLogAfter(
  ctx: RoleContext,
  keep: number,
  quarantineDir: string,
): Promise<SetAside | null> {
  const { state, log } = ctx;
  const lastLsn = log.lastLsn;
  if (lastLsn <= keep) return null;
  // A log that starts above `keep + 1` (dropped through a CP) is set aside whole.
  const from = Math.max(keep, log.firstLsn - 1);
  const file = from < lastLsn ? await log.copyFramesAfter(from, quarantineDir) : null;
  if (from === keep) await log.truncateAfter(keep);
  else await log.reset(keep);
  state.stats.lsn.last = log.lastLsn;
  state.stats.lsn.acked = Math.min(state.stats.lsn.acked, log.lastLsn);
  return { file, firstLsn: from + 1, lastLsn };
}

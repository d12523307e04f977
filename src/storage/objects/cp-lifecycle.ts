/**
 * The CP lifecycle: freeze the active layer, wait until its records are
 * durable here and held by the mirror, write it into the volume, commit the
 * superblock, let the mirror commit the same CP, then hand what the CP
 * replaced to reclamation (freed once both sides hold the CP and no reader
 * of an older one remains: invariant 2). A CP that fails is abandoned: its
 * blocks stay free space and its writes go back into the dirty layer.
 *
 * @example
 * ```ts
 * declare const cps: CpLifecycle;
 * const result = await cps.checkpoint(); // null when nothing was dirty
 * if (result) console.log(result.superblock.cp, result.released.length);
 * ```
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { errorMessage, isError, RefsyncError } from "../../errors/mod.ts";
import { Catalog } from "../catalog/mod.ts";
import { cpContentDigest, nextVolumeDigest } from "../volume/digest.ts";
import { encodeSuperblock } from "../volume/superblock.ts";
import type { CpTransaction } from "../volume/volume.ts";
import { writeCheckpoint } from "./checkpoint.ts";
import type { DirtyObject } from "./overlay.ts";
import { assertOpen, type StoreParts } from "./state.ts";
import type { CheckpointResult, StoreOptions } from "./types.ts";

/** Durations of this many recent CPs are kept for the stats' percentiles. */
const CP_DURATIONS_KEPT = 1024;

/** What the CP lifecycle works on. */
export interface CpContext extends StoreParts {
  options: StoreOptions;
  /** Resolves once the last appended record is durable here. */
  lastDurable: () => Promise<void>;
}

/** Runs CPs one at a time, and owes the mirror the commit of the last one until it is done. */
export class CpLifecycle {
  readonly #ctx: CpContext;
  #running: Promise<CheckpointResult | null> | null = null;
  /** A CP committed here whose mirror commit is still owed. */
  #unsynced: CheckpointResult | null = null;
  /** The cause of the last CP failure, until a CP succeeds (repeats are logged at debug). */
  #lastFailure: string | null = null;

  constructor(ctx: CpContext) {
    this.#ctx = ctx;
  }

  /** The CP running now, or null. */
  get running(): Promise<CheckpointResult | null> | null {
    return this.#running;
  }

  /** True when a CP committed here still owes its commit on the mirror. */
  get needsSync(): boolean {
    return this.#unsynced !== null;
  }

  /** Records that the mirror still owes the commit of `result` (a resync after a restart). */
  markUnsynced(result: CheckpointResult): void {
    this.#unsynced = result;
  }

  /** See {@link ObjectStore.checkpoint}. */
  checkpoint(force = false): Promise<CheckpointResult | null> {
    assertOpen(this.#ctx.state);
    if (this.#ctx.state.mirror) {
      throw new RefsyncError("conflict", "a destination takes CPs only from its source");
    }
    if (this.#running) {
      // Join: a write that waited must see its data in a CP, so run one more after this one.
      return this.#running.catch(() => {}).then(() => this.checkpoint(force));
    }
    const started = this.#ctx.clock.monotonic();
    const run = this.#run(force).then(
      (result) => {
        if (result) this.#logCommitted(result, this.#ctx.clock.monotonic() - started);
        this.#lastFailure = null;
        return result;
      },
      (e) => {
        this.#logFailed(e);
        throw e;
      },
    ).finally(() => {
      this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #run(force: boolean): Promise<CheckpointResult | null> {
    const { options, layers, state, volume } = this.#ctx;
    await options.ready?.();
    if (this.#unsynced) await this.#sync(this.#unsynced);
    if (layers.active.size === 0 && !force) return null;
    const started = this.#ctx.clock.monotonic();
    const lsnCovered = layers.coveredLsn(state.stats.lsn.last);
    const frozen = layers.freeze();
    const tx = volume.beginCp();
    let result: CheckpointResult;
    try {
      // The superblock will claim every record <= lsnCovered: they must be on disk first.
      await this.#ctx.lastDurable();
      let holds = lsnCovered;
      for (const d of frozen.values()) holds = Math.max(holds, d.lastLsn);
      await options.mirrorHolds?.(holds);
      result = await this.#writeAndCommit(tx, frozen, lsnCovered, started);
    } catch (e) {
      tx.abort();
      state.catalog = new Catalog(volume, volume.superblock.catalogRoot);
      layers.thaw(frozen);
      throw e;
    }
    if (options.syncCheckpoint) {
      this.#unsynced = result;
      await this.#sync(result);
    } else this.#ctx.reclamation.markSyncedThrough(result.superblock.cp);
    return result;
  }

  async #writeAndCommit(
    tx: CpTransaction,
    frozen: Map<string, DirtyObject>,
    lsnCovered: number,
    started: number,
  ): Promise<CheckpointResult> {
    const { volume, log, state, layers, clock } = this.#ctx;
    const previous = volume.superblock;
    // The CP's tree is built in a catalog of its own: readers keep the committed tree
    // (under the frozen layer) until the new one is on disk.
    const catalog = new Catalog(volume, state.catalog.root);
    const { catalogRoot, zeroBlocks } = await writeCheckpoint(
      tx,
      catalog,
      log,
      frozen,
      clock,
    );
    const fields = {
      cp: tx.cp,
      lsnCovered,
      catalogRoot,
      blockCount: tx.blockCount,
      pairGeneration: state.generation,
    };
    const volumeDigest = nextVolumeDigest(
      previous.volumeDigest,
      cpContentDigest(tx.written),
      fields,
    );
    // A promotion's CP (the generation changes) marks where the new generation's history
    // began: at which LSN, and from which CP (a failing-back old source resyncs from it).
    const promotion = state.generation === previous.pairGeneration ? {} : {
      promotedAtLsn: lsnCovered,
      promotedFromCp: previous.cp,
      promotedFromDigest: previous.volumeDigest,
    };
    const sb = await tx.commit({ ...previous, ...fields, volumeDigest, ...promotion });
    // The new tree is on disk: reads move to it, and the frozen layer is now in it.
    state.catalog = catalog;
    layers.committed();
    this.#ctx.reads.forgetEtags(frozen.keys());
    const durationMs = clock.monotonic() - started;
    const stats = state.stats.cp;
    stats.committed = sb.cp;
    stats.lastDurationMs = durationMs;
    stats.durationsMs.push(durationMs);
    if (stats.durationsMs.length > CP_DURATIONS_KEPT) stats.durationsMs.shift();
    this.#ctx.options.cpCommitted?.(durationMs);
    this.#ctx.reclamation.retire({
      cp: sb.cp,
      blocks: tx.released,
      lsn: lsnCovered,
      synced: false,
    });
    return {
      superblock: sb,
      superblockBytes: encodeSuperblock(sb),
      written: tx.written,
      released: tx.released,
      zeroBlocks,
      previousDigest: previous.volumeDigest,
      durationMs,
    };
  }

  /**
   * Lets the mirror commit `result`. Synced: what every CP through it replaced
   * may be freed. Deferred: it is no longer owed (the mirror brings the
   * destination past it itself), and what it replaced stays until
   * {@link mirrorCaughtUp}. A rejection keeps it owed.
   */
  async #sync(result: CheckpointResult): Promise<void> {
    const outcome = await this.#ctx.options.syncCheckpoint!(result);
    if (this.#unsynced === result) this.#unsynced = null;
    if (outcome === "synced") this.#ctx.reclamation.markSyncedThrough(result.superblock.cp);
  }

  /** See {@link ObjectStore.mirrorCaughtUp}. */
  mirrorCaughtUp(cp: number): void {
    this.#ctx.reclamation.markSyncedThrough(cp);
  }

  /**
   * `cp.committed` is a debug event: at the default of one CP a second, info
   * would bury the state changes an operator acts on (the CP counters are in
   * /v1/admin/stats).
   */
  #logCommitted(result: CheckpointResult, totalMs: number): void {
    const { logger } = this.#ctx;
    if (!logger.enabled("debug")) return;
    const w = result.written;
    let meta = 0;
    for (let row = 0; row < w.count; row++) if (w.kind(row) === "meta") meta++;
    logger.debug("cp.committed", {
      cp: result.superblock.cp,
      lsnCovered: result.superblock.lsnCovered,
      durationMs: Math.round(result.durationMs),
      // With a mirror: until the destination committed it too.
      totalMs: Math.round(totalMs),
      bytes: { data: (w.count - meta) * BLOCK_SIZE, meta: meta * BLOCK_SIZE },
      zeroBlocks: result.zeroBlocks,
      releasedBlocks: result.released.length,
    });
  }

  /**
   * The first failure of a kind is a warning (an error when a block it read is damaged);
   * the same cause again (every tick) is debug.
   */
  #logFailed(e: unknown): void {
    const cause = errorMessage(e);
    const level = cause === this.#lastFailure ? "debug" : isError(e, "corrupt") ? "error" : "warn";
    this.#lastFailure = cause;
    this.#ctx.logger[level]("cp.failed", { cp: this.#ctx.volume.superblock.cp + 1, cause });
  }
}

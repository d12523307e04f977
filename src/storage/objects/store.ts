/**
 * The object store: the storage engine both appliances run. It ties the NVLOG
 * (durability of each write), the dirty layers (writes since the last CP, as
 * extents into the log), the catalog and the copy-on-write volume together.
 * This class is the façade; each job is a module of this folder:
 *
 * - `writes.ts`: body -> 1 MiB log records -> durable locally and on the mirror -> acknowledged;
 * - `layers.ts`: the active and frozen dirty layers;
 * - `reads.ts`: stat, streamed reads that pin their CP, listing, the ETag cache;
 * - `cp-lifecycle.ts`: freeze, write, commit, let the mirror commit, retire what it replaced;
 * - `reclamation.ts`: pins, and freeing what CPs replaced once both sides hold them (invariant 2);
 * - `space.ts`: whether a client record fits on the disk (`no_space`);
 * - `recovery.ts`: live blocks at open, log replay (idempotent: every operation is a blind write);
 * - `roles.ts`: adopting the source's CPs, promotion, fencing.
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";
import { Catalog } from "../catalog/mod.ts";
import { DataDir } from "../datadir/mod.ts";
import { nodeFileOps } from "../fs/file-ops.ts";
import { systemClock } from "../../runtime/clock.ts";
import { NvLog } from "../log/mod.ts";
import type { Superblock } from "../volume/superblock.ts";
import { Volume } from "../volume/volume.ts";
import {
  type BlockDigestList,
  type DigestListContext,
  judgeRepairs,
  openDigestList,
  type RepairRecord,
  repairRefused,
  type RepairResult,
} from "./block-digests.ts";
import { CpLifecycle } from "./cp-lifecycle.ts";
import { encodeKey } from "./key.ts";
import { DirtyLayers } from "./layers.ts";
import { ObjectReads } from "./reads.ts";
import { Reclamation } from "./reclamation.ts";
import { decodeRecord } from "./record.ts";
import { markLive, rebuildLastCheckpoint, replay } from "./recovery.ts";
import { adoptCommitted, fence, promote, type RoleContext } from "./roles.ts";
import {
  type CatchUpCommit,
  catchUpCommitted,
  type CatchUpRecord,
  clearCatchUp,
  commitCatchUp,
  loadCatchUp,
  promotionRefused,
  saveCatchUp,
} from "./catch-up.ts";
import type { CpTransaction } from "../volume/volume.ts";
import type { CatchUpBegin } from "../../protocol/handshake/mod.ts";
import { SpaceAccounting } from "./space.ts";
import { newStoreState, type StoreState, type StoreStats } from "./state.ts";
import {
  type CheckpointResult,
  DEFAULT_SPACE_RESERVE,
  type ObjectInfo,
  type Precondition,
  type StoreOptions,
  type WriteOptions,
  type WriteResult,
} from "./types.ts";
import { ObjectWrites } from "./writes.ts";

export type { BlockDigest, BlockDigestList, RepairRecord, RepairResult } from "./block-digests.ts";
export {
  type CheckpointResult,
  DEFAULT_SPACE_RESERVE,
  type ObjectInfo,
  type Precondition,
  RECORD_PAYLOAD_BYTES,
  type StoreOptions,
  type SyncOutcome,
  type WriteOptions,
  type WriteResult,
} from "./types.ts";

/** Default of {@link StoreOptions.readIdleMs}. */
const READ_IDLE_MS = 30_000;
/** Default of {@link StoreOptions.pinWarnMs}. */
const PIN_WARN_MS = 5 * 60_000;

/**
 * A store in a directory: `volume.dat` and `log/`, under the directory's lock
 * and role ({@link DataDir}: a mirror store is a destination's, any other a
 * source's).
 *
 * @example
 * ```ts
 * import { ObjectStore } from "./store.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await ObjectStore.open(dir, { cpDirtyBytes: 64 << 20, maxObjectBytes: 5 << 30 });
 * const body = ReadableStream.from([new Uint8Array([1, 2, 3])]);
 * await store.write("a", body, { replace: true, offset: 0 });
 * await store.checkpoint();
 * await store.close();
 * ```
 */
export class ObjectStore {
  readonly volume: Volume;
  readonly log: NvLog;
  readonly options: StoreOptions;
  /** Counters of `/v1/admin/stats`. */
  readonly stats: StoreStats;
  readonly #dataDir: DataDir;
  readonly #state: StoreState;
  readonly #layers: DirtyLayers;
  readonly #reclamation: Reclamation;
  readonly #reads: ObjectReads;
  readonly #cps: CpLifecycle;
  readonly #writes: ObjectWrites;
  readonly #roles: RoleContext;
  readonly #digestContext: DigestListContext;
  readonly #logger: Logger;
  /** The catch-up recorded in `DATA/catch-up.json` (a destination's), or null. */
  #catchUp: CatchUpRecord | null = null;

  private constructor(dataDir: DataDir, volume: Volume, log: NvLog, options: StoreOptions) {
    const logger: Logger = options.logger ?? rootLogger();
    const clock = options.clock ?? systemClock;
    this.volume = volume;
    this.log = log;
    this.options = options;
    this.#dataDir = dataDir;
    // A promotion records its generation before its CP: a crash between the two still raises it.
    const generation = Math.max(volume.superblock.pairGeneration, dataDir.pairGeneration);
    const state = newStoreState(
      new Catalog(volume, volume.superblock.catalogRoot),
      generation,
      options.mirror === true,
    );
    this.#state = state;
    this.stats = state.stats;
    const layers = new DirtyLayers((key) => {
      const value = state.catalog.get(encodeKey(key));
      return value ? { size: decodeRecord(value).size } : null;
    });
    this.#layers = layers;
    const reclamation = new Reclamation(
      volume,
      log,
      logger,
      options.pinWarnMs ?? PIN_WARN_MS,
      clock,
    );
    this.#reclamation = reclamation;
    const reads = new ObjectReads({
      layers,
      catalog: () => state.catalog,
      io: { log, volume, logger },
      reclamation,
      cp: () => volume.superblock.cp,
      readIdleMs: options.readIdleMs ?? READ_IDLE_MS,
      logger,
      clock,
    });
    this.#reads = reads;
    const cps = new CpLifecycle({
      volume,
      log,
      layers,
      state,
      reclamation,
      reads,
      options,
      logger,
      clock,
      lastDurable: () => this.#writes.lastDurable,
    });
    this.#cps = cps;
    const space = new SpaceAccounting({
      ops: options.fileOps ?? nodeFileOps,
      dir: dataDir.path,
      layers,
      volume,
      log,
      reserve: options.spaceReserve ?? DEFAULT_SPACE_RESERVE,
      pendingReclaim: () => reclamation.pending,
      checkpoint: (force) => cps.checkpoint(force),
    });
    this.#writes = new ObjectWrites({ log, layers, state, space, reads, cps, options, clock });
    this.#roles = { dataDir, volume, log, layers, state, reclamation, reads, cps, logger, clock };
    this.#logger = logger;
    this.#digestContext = {
      reader: volume,
      reclamation,
      logger,
      clock,
      idleMs: options.readIdleMs ?? READ_IDLE_MS,
    };
  }

  /**
   * Opens (or creates) the store in `dir` and recovers: best superblock + log
   * replay. Fails at once when another process holds `dir`, or when `dir`
   * holds the other role's data.
   */
  static async open(dir: string, options: StoreOptions): Promise<ObjectStore> {
    const { fileOps, clock, random } = options;
    const dataDir = DataDir.open(dir, {
      role: options.mirror ? "destination" : "source",
      fs: fileOps,
      clock,
    });
    let volume: Volume | null = null;
    let log: NvLog;
    try {
      (fileOps ?? nodeFileOps).mkdirSync(`${dir}/log`, { recursive: true });
      volume = await Volume.open(`${dir}/volume.dat`, { fileOps, random });
      log = await NvLog.open(`${dir}/log`, { segmentSize: options.logSegmentBytes, fileOps });
    } catch (e) {
      volume?.close();
      dataDir.close();
      throw e;
    }
    const store = new ObjectStore(dataDir, volume, log, options);
    try {
      const fs = fileOps ?? nodeFileOps;
      store.#catchUp = options.mirror ? loadCatchUp(fs, dir) : null;
      if (store.#catchUp && catchUpCommitted(store.#catchUp, volume.superblock)) {
        // Committed, and the crash came before the record was deleted.
        clearCatchUp(fs, dir);
        store.#catchUp = null;
      }
      const retired = store.#markLive();
      if (retired) store.#reclamation.retire(retired);
      if (!options.mirror) replay(log, volume.superblock.lsnCovered + 1, store.#layers);
    } catch (e) {
      await store.close();
      throw e;
    }
    store.stats.cp.committed = volume.superblock.cp;
    store.stats.lsn.last = log.lastLsn;
    store.stats.lsn.acked = log.lastLsn;
    return store;
  }

  /**
   * Marks the committed CP's blocks live. During a catch-up the base CP's
   * blocks may be overwritten already (the image is declared incomplete), so
   * a walk that fails there marks what it reached: nothing allocates on a
   * destination, and the catch-up's commit rebuilds the bitmap from its tree.
   */
  #markLive(): ReturnType<typeof markLive> {
    try {
      return markLive(
        this.volume,
        this.options.mirror === true,
        (block, kind, key) =>
          this.#logger.error("store.corrupt_block", {
            block,
            kind,
            key: key === null ? null : new TextDecoder().decode(key),
            at: "open",
          }),
      );
    } catch (e) {
      if (this.#catchUp === null) throw e;
      this.#logger.warn("store.catch_up_base_damaged", {
        cause: e instanceof Error ? e.message : String(e),
      });
      return null;
    }
  }

  /**
   * Destination: the catch-up in progress (recorded in `DATA/catch-up.json`),
   * or null. While one is recorded the image is incomplete: no object is
   * served and promotion is refused.
   */
  get catchUp(): CatchUpRecord | null {
    return this.#catchUp;
  }

  /**
   * Destination: records a catch-up durably before its first block. The same
   * catch-up (base, target and digest) keeps its progress; another one starts
   * at 0 (the blocks of the old one stay on disk: a source may CHECK them).
   */
  beginCatchUp(
    target: CatchUpBegin,
  ): CatchUpRecord {
    if (!this.isMirror) throw new RefsyncError("conflict", "only a destination catches up");
    const current = this.#catchUp;
    if (
      current && current.baseCp === target.baseCp && current.targetCp === target.targetCp &&
      current.targetDigest === target.targetDigest
    ) return current;
    const sb = this.superblock;
    if (target.baseCp !== (current?.baseCp ?? sb.cp)) {
      throw new RefsyncError(
        "conflict",
        `a catch-up from CP ${target.baseCp}, but this destination's image is CP ${
          current?.baseCp ?? sb.cp
        }`,
      );
    }
    const record = { ...target, blocksDone: 0, bytesDone: 0 };
    saveCatchUp(this.#fs, this.#dataDir.path, record);
    this.#catchUp = record;
    return record;
  }

  /** Destination: the volume transaction the recorded catch-up's blocks are written through. */
  catchUpTransaction(): CpTransaction {
    const record = this.#requireCatchUp();
    return this.volume.beginCatchUp(record.targetCp);
  }

  /**
   * Destination: the first `blocksDone` walk entries are written through `tx`:
   * makes them durable (flush, fdatasync), then records the progress.
   */
  async recordCatchUpProgress(
    tx: CpTransaction,
    blocksDone: number,
    bytesDone: number,
  ): Promise<void> {
    const record = this.#requireCatchUp();
    tx.flush();
    await this.volume.sync();
    const next = { ...record, blocksDone, bytesDone };
    saveCatchUp(this.#fs, this.#dataDir.path, next);
    this.#catchUp = next;
  }

  /**
   * Destination: commits the recorded catch-up with the source's superblock
   * once every block born after the base checks; deletes the record.
   */
  async commitCatchUp(tx: CpTransaction, superblock: Uint8Array): Promise<CatchUpCommit> {
    const record = this.#requireCatchUp();
    const result = await commitCatchUp(this.#roles, this.#fs, record, tx, superblock);
    if (result.committed) this.#catchUp = null;
    return result;
  }

  #requireCatchUp(): CatchUpRecord {
    if (this.#catchUp === null) {
      throw new RefsyncError("conflict", "no catch-up is recorded on this destination");
    }
    return this.#catchUp;
  }

  get #fs() {
    return this.options.fileOps ?? nodeFileOps;
  }

  /** Why this store was fenced (its destination was promoted), or null. */
  get fenced(): string | null {
    return this.#state.fenced;
  }

  /**
   * The pair generation this store works in: the committed CP's, or the one
   * a promotion raised it to before its CP commits.
   */
  get pairGeneration(): number {
    return this.#state.generation;
  }

  /** True while this store mirrors a source (a destination not promoted). */
  get isMirror(): boolean {
    return this.#state.mirror;
  }

  /** The committed CP's superblock. */
  get superblock(): Superblock {
    return this.volume.superblock;
  }

  /** Dirty bytes not yet in a CP (the active layer). */
  get dirtyBytes(): number {
    return this.#layers.activeBytes;
  }

  /** True when a CP committed here still owes its commit on the mirror. */
  get needsSync(): boolean {
    return this.#cps.needsSync;
  }

  /** Hex volume digest of the committed CP. */
  digest(): { cp: number; digest: string } {
    return { cp: this.superblock.cp, digest: this.superblock.volumeDigest.toHex() };
  }

  /**
   * Streams `body` into the object `key`. With `replace` the object becomes
   * exactly the body (a whole PUT); without, the body is written at `offset`
   * (a ranged write), extending the object as needed. Resolves once every
   * record is durable locally and on the mirror.
   *
   * A `precondition` is checked before the body is read and again right
   * before the write's last record is appended, in the same turn that applies
   * it: of two racing create-only writes exactly one passes, and a refused
   * write leaves at most an uncommitted transaction in the log (never applied).
   *
   * `meta` (whole PUTs only) is called once the body has ended; the blob it
   * returns (at most `MAX_META_BYTES` of record.ts) is committed with the object in
   * its COMMIT record and served by {@link stat} and {@link list}. The API
   * that writes it owns its content. Throwing from it aborts the write.
   */
  write(
    key: string,
    body: ReadableStream<Uint8Array> | null,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    return this.#writes.write(key, body, opts);
  }

  /**
   * Deletes `key`; null when there was no such object. A `precondition` is
   * checked against the object when the delete is applied.
   */
  delete(
    key: string,
    opts: { precondition?: Precondition } = {},
  ): Promise<{ lsn: number; mirrored: boolean } | null> {
    return this.#writes.delete(key, opts);
  }

  /** Size, ETag and mtime of `key`, or null when it does not exist. */
  stat(key: string): ObjectInfo | null {
    return this.#reads.stat(key);
  }

  /**
   * Streams bytes `[start, end)` of `key` as they are now: later writes and
   * CPs do not change what an open stream returns (the blocks and log it
   * reads are kept until it ends).
   *
   * The stream pins the CP it reads until it ends, errors or is cancelled,
   * and also once it has not been pulled for {@link StoreOptions.readIdleMs}
   * (a reader that never starts, stalls or vanished): it is then logged and
   * errors with `request_timeout` if pulled again, since what it read from
   * may be reused.
   *
   * The first piece is read (and its blocks checked) before the stream is
   * returned, so a damaged block there throws `corrupt` before any header is
   * sent; a damaged block further on errors the stream, which cuts the body.
   */
  read(key: string, start: number, end: number): ReadableStream<Uint8Array> {
    return this.#reads.read(key, start, end);
  }

  /** Objects in key order (UTF-8 byte order), with `prefix`, after `startAfter`. */
  list(opts: { prefix?: string; startAfter?: string; limit: number }): {
    objects: ObjectInfo[];
    next: string | null;
  } {
    return this.#reads.list(opts);
  }

  /**
   * Takes a CP now (or joins the one running) and resolves when it is
   * committed here and, with a mirror, there. Resolves null when nothing was
   * dirty.
   */
  checkpoint(force = false): Promise<CheckpointResult | null> {
    return this.#cps.checkpoint(force);
  }

  /** Records that the mirror still owes the commit of `result` (a resync after a restart). */
  markUnsynced(result: CheckpointResult): void {
    this.#cps.markUnsynced(result);
  }

  /**
   * The mirror learned that its destination committed CP `cp`: what the CPs
   * through `cp` replaced (kept while their syncs were deferred) may be freed
   * once no reader of an older CP remains.
   *
   * @example
   * ```ts
   * declare const store: ObjectStore;
   * store.mirrorCaughtUp(12); // the destination reported CP 12 at its handshake
   * ```
   */
  mirrorCaughtUp(cp: number): void {
    this.#cps.mirrorCaughtUp(cp);
  }

  /**
   * Rebuilds the CP sync input of the committed CP from the volume: every
   * block born in it (a tree walk by birth CP), as DATA, and what it released
   * (live in the previous CP, not in this one). Used when the source restarted
   * between its own commit and the mirror's.
   */
  rebuildLastCheckpoint(): CheckpointResult {
    return rebuildLastCheckpoint(this.volume);
  }

  /**
   * Destination: a CP sync committed CP `cp` on the volume. Reads move to it;
   * the blocks it released and the log it covers are freed once no reader of
   * an older CP remains.
   */
  adoptCommitted(cp: number, released: number[], lsnCovered: number): void {
    adoptCommitted(this.#roles, cp, released, lsnCovered);
  }

  /**
   * Destination: become a source. Replays the durable log beyond the
   * committed CP (every write the old source acknowledged is in it), raises the
   * pair generation so the old source is refused, and commits a CP with it.
   */
  promote(): Promise<CheckpointResult | null> {
    // Refused before anything changes: the image is incomplete.
    if (this.#catchUp !== null) return Promise.reject(promotionRefused(this.#catchUp));
    return promote(this.#roles);
  }

  /**
   * Fences this store for good (its destination was promoted): from now on
   * every write fails with `fenced` before anything is logged, and the log
   * records above `keepLsn` — a tail the promoted side never received, so never
   * acknowledged — are set aside: copied to `quarantineDir/<first LSN>.seg`
   * (frames as in the log), cut from the log, and dropped from view (the dirty
   * layers are rebuilt from the log). Records a committed CP holds are never
   * cut. Resolves with what was set aside, or null when there was no tail.
   *
   * @example
   * ```ts
   * declare const store: ObjectStore;
   * const aside = await store.fence("the destination was promoted", 41, "data/source/quarantine");
   * if (aside) console.log(`set aside LSN ${aside.firstLsn}..${aside.lastLsn} in ${aside.file}`);
   * ```
   */
  fence(
    reason: string,
    keepLsn: number,
    quarantineDir: string,
  ): Promise<{ file: string; firstLsn: number; lastLsn: number } | null> {
    return fence(this.#roles, reason, keepLsn, quarantineDir);
  }

  /**
   * Opens the list of block digests of committed CP `cp` (the committed one,
   * or the one before while its blocks are all still kept), pinned until
   * `close()`, its end, or {@link StoreOptions.readIdleMs} without a pull:
   * no block of it moves meanwhile, whatever CPs commit. Throws `conflict`
   * for a CP this store no longer holds.
   *
   * @example
   * ```ts
   * declare const store: ObjectStore;
   * const list = store.openBlockDigests(store.superblock.cp);
   * try {
   *   for (const d of list.blocks) if (d.damaged) console.log(d.block);
   * } finally {
   *   list.close();
   * }
   * ```
   */
  openBlockDigests(cp: number, windowBlocks?: number): BlockDigestList {
    return openDigestList(this.#digestContext, this.#heldSuperblock(cp), windowBlocks);
  }

  /**
   * Writes `bytes` over `block` of the committed CP, then fdatasyncs, only
   * when they match the check in that block's own map entry (a catalog
   * node: its checksum and birth CP); anything else throws `conflict` and
   * writes nothing.
   *
   * @example
   * ```ts
   * declare const store: ObjectStore;
   * declare const goodBytes: Uint8Array;
   * await store.repairBlock(517, goodBytes);
   * ```
   */
  async repairBlock(block: number, bytes: Uint8Array): Promise<void> {
    const { refused } = await this.repairBlocks(this.superblock.cp, [{ block, bytes }]);
    if (refused.length > 0) throw repairRefused(refused);
  }

  /**
   * {@link repairBlock} for a batch, against committed CP `cp` (`conflict`
   * when the committed CP is another): one walk, one fdatasync; each record
   * refused is answered with why, the others are written.
   */
  async repairBlocks(cp: number, records: RepairRecord[]): Promise<RepairResult> {
    const sb = this.superblock;
    if (cp !== sb.cp) {
      throw new RefsyncError(
        "conflict",
        `repair of CP ${cp}, but the committed CP here is ${sb.cp}: verify again`,
      );
    }
    // Judged and written in one turn: the committed CP cannot change in between.
    const { accepted, refused } = judgeRepairs(this.volume, sb, records);
    if (accepted.length > 0) await this.volume.repairBlocks(accepted);
    return { repaired: accepted.map((r) => r.block), refused };
  }

  #heldSuperblock(cp: number): Superblock {
    const sb = this.superblock;
    const prev = this.volume.previousSuperblock;
    if (cp === sb.cp) return sb;
    if (prev !== null && prev.cp === cp && this.#reclamation.keeps(cp)) return prev;
    throw new RefsyncError(
      "conflict",
      `CP ${cp} is not held here: the committed CP is ${sb.cp}` +
        (prev && this.#reclamation.keeps(prev.cp) ? ` (and CP ${prev.cp} before it)` : ""),
    );
  }

  /** Flushes nothing further; closes the files. Pending writes must be finished. */
  async close(): Promise<void> {
    if (this.#state.closed) return;
    this.#state.closed = true;
    // Open read streams end here: they error if pulled, and their timers stop.
    this.#reclamation.releaseAll();
    await this.#cps.running?.catch(() => {});
    try {
      await this.log.close();
      this.volume.close();
    } finally {
      // Released even when a file fails to close: the directory must not stay locked.
      this.#dataDir.close();
    }
  }
}

/**
 * The object store: the storage engine both appliances run. It ties the NVLOG
 * (durability of each write), the dirty layers (writes since the last CP, as
 * extents into the log), the catalog and the copy-on-write volume together.
 *
 * Write path: body -> 1 MiB log records (a multi-record write is a transaction,
 * applied only at its COMMIT, so no reader or recovery ever sees half of it)
 * -> durable locally and on the mirror -> acknowledged.
 * CP: freeze the active layer, write it into the volume, commit the superblock,
 * let the mirror commit the same CP, then free what the CP replaced.
 * Recovery: the best superblock plus a replay of the log records above its
 * covered LSN. Replay is idempotent: every operation is a blind write.
 *
 * @module
 */
import { blake3, Blake3Hasher, toHex } from "../../block-index/mod.ts";
import { errorMessage, isError, RefsyncError } from "../../errors/mod.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";
import { Flag, Op } from "../../protocol/log-frame/mod.ts";
import { Catalog } from "../catalog/mod.ts";
import { DataDir } from "../datadir/mod.ts";
import { type FileSystem, nodeFileOps } from "../fs/file-ops.ts";
import { type Clock, systemClock, type TimerId } from "../../runtime/clock.ts";
import type { Random } from "../../runtime/random.ts";
import { walkMap } from "../blockmap/blockmap.ts";
import { type Appended, type AppendFields, groupTransactions, NvLog } from "../log/mod.ts";
import { cpContentDigest, nextVolumeDigest } from "../volume/digest.ts";
import { encodeSuperblock, type Superblock } from "../volume/superblock.ts";
import { BLOCK_SIZE } from "../volume/types.ts";
import { type CpTransaction, Volume } from "../volume/volume.ts";
import { WrittenBlocks } from "../volume/written.ts";
import { writeCheckpoint } from "./checkpoint.ts";
import { buildView, hashView, readChunk, type View, type ViewSource } from "./view.ts";
import { encodeKey } from "./key.ts";
import { addExtent, type DirtyObject, type Extent, extentBytes } from "./overlay.ts";
import { decodeRecord, MAX_META_BYTES } from "./record.ts";

/** Largest payload of one log record: a bigger write is a multi-record transaction. */
export const RECORD_PAYLOAD_BYTES = 1 << 20;
/** Computed ETags of committed objects kept in memory. */
const ETAG_CACHE_ENTRIES = 4096;
/** Default of {@link StoreOptions.readIdleMs}. */
const READ_IDLE_MS = 30_000;
/** Default of {@link StoreOptions.pinWarnMs}. */
const PIN_WARN_MS = 5 * 60_000;
/** Default {@link StoreOptions.spaceReserve}: 8 MiB. */
export const DEFAULT_SPACE_RESERVE = 8 << 20;

/** Tuning and hooks of a store. */
export interface StoreOptions {
  /** A CP starts when this many dirty bytes accumulate; writers wait at twice it. */
  cpDirtyBytes: number;
  /** Largest object a write may create (413 beyond). */
  maxObjectBytes: number;
  /** Log segment size. */
  logSegmentBytes?: number;
  /**
   * Called with each batch of appended records as soon as they are written
   * locally (the local fsync runs meanwhile); resolves once the mirror holds
   * them durably. A write is acknowledged only when both are durable.
   */
  replicate?: (written: Appended[]) => Promise<void>;
  /**
   * Called after a CP committed locally; resolves once the mirror committed it
   * too. Until then the blocks and log the CP replaced are kept, and no next CP
   * starts.
   */
  syncCheckpoint?: (cp: CheckpointResult) => Promise<void>;
  /**
   * Mirror mode (a destination): the log is not replayed into the dirty
   * layers; reads serve the last committed CP, and CPs arrive from the source
   * ({@link ObjectStore.adoptCommitted}) until {@link ObjectStore.promote}.
   */
  mirror?: boolean;
  /** Resolves when the mirror is ready for CP syncs (its first handshake); CPs wait for it. */
  ready?: () => Promise<void>;
  /**
   * Resolves once the mirror holds every record up to `lsn` durably (the
   * last record whose effect a CP holds). A CP commits locally only then, so
   * no committed CP ever holds a write the mirror did not acknowledge; when it
   * rejects, the CP is abandoned.
   */
  mirrorHolds?: (lsn: number) => Promise<void>;
  /**
   * A read stream not pulled for this long (ms) releases the CP it pins and
   * errors if pulled later: an abandoned or stalled reader never stops space
   * reclamation. Default 30 s.
   */
  readIdleMs?: number;
  /** A reader that holds back reclamation for longer than this (ms) is logged. Default 5 min. */
  pinWarnMs?: number;
  /** Where CP, promotion and reader events go (default: the root logger). */
  logger?: Logger;
  /**
   * Free bytes on the data directory's filesystem that client writes may not
   * take: what CPs (catalog and map blocks), DELETE and COMMIT records use
   * when the disk is otherwise full. Default {@link DEFAULT_SPACE_RESERVE}.
   */
  spaceReserve?: number;
  /** The file system of the data directory (tests inject faults; the simulator its own disk). Default node:fs. */
  fileOps?: FileSystem;
  /** Time: mtimes, durations, read-idle timers (the simulator's own). Default the system clock. */
  clock?: Clock;
  /** Randomness: a new volume's id (the simulator's, seeded). Default the OS CSPRNG. */
  random?: Random;
  /** Called when a CP of this store committed locally, with its duration (metrics). */
  cpCommitted?: (durationMs: number) => void;
}

/**
 * A condition on the object as it is when a write or delete is applied
 * (`null`: absent); it throws to refuse, and then nothing is applied. It may
 * run more than once: early, before the body is read, and at the commit.
 * Reading `etag` of an object whose ETag is unknown hashes it.
 */
export type Precondition = (current: ObjectInfo | null) => void;

/** An open reader's hold on the CP it reads: that CP's blocks and log are kept meanwhile. */
interface Pin {
  cp: number;
  key: string;
  since: number;
  warned: boolean;
  released: boolean;
  /** The idle bound of its stream. */
  timer?: TimerId;
}

/** Size, ETag and mtime of an object. */
export interface ObjectInfo {
  key: string;
  size: number;
  mtime: number;
  etag: string;
  /** The metadata blob written with the object ({@link ObjectStore.write}'s `meta`), or null. */
  meta: Uint8Array | null;
}

/** The outcome of an acknowledged write. */
export interface WriteResult {
  key: string;
  size: number;
  /** BLAKE3 hex of the object, or null after a ranged write (computed by HEAD/GET). */
  etag: string | null;
  lsn: number;
  created: boolean;
}

/** A committed CP, with what the CP sync needs to send it. */
export interface CheckpointResult {
  superblock: Superblock;
  superblockBytes: Uint8Array;
  /** The blocks it wrote: digests, and how the destination can build each from what it holds. */
  written: WrittenBlocks;
  /** Blocks live in the previous CP and not in this one. */
  released: number[];
  /** All-zero data blocks that became holes (no block, nothing to send). */
  zeroBlocks: number;
  previousDigest: Uint8Array;
  durationMs: number;
}

/**
 * A store in a directory: `volume.dat` and `log/`, under the directory's lock
 * and role ({@link DataDir}: a mirror store is a destination's, any other a
 * source's).
 *
 * @example
 * ```ts
 * const store = await ObjectStore.open("data/source", { cpDirtyBytes: 64 << 20, maxObjectBytes: 5 << 30 });
 * await store.write("a", ReadableStream.from([new Uint8Array([1, 2, 3])]), { replace: true, offset: 0 });
 * await store.checkpoint();
 * await store.close();
 * ```
 */
export class ObjectStore {
  readonly volume: Volume;
  readonly log: NvLog;
  readonly options: StoreOptions;
  readonly #dataDir: DataDir;
  readonly #log: Logger;
  #catalog: Catalog;
  #active = new Map<string, DirtyObject>();
  #frozen: Map<string, DirtyObject> | null = null;
  #activeBytes = 0;
  /** First LSNs of transactions that have records in the log but no COMMIT yet. */
  #inflight = new Set<number>();
  /** Payload bytes of transactions logged but not yet committed (not in any layer yet). */
  #stagedBytes = 0;
  /** Dirty bytes of the frozen layer while a CP writes it. */
  #frozenBytes = 0;
  readonly #dir: string;
  readonly #ops: FileSystem;
  readonly #clock: Clock;
  #cpRunning: Promise<CheckpointResult | null> | null = null;
  /** A CP committed here whose mirror commit is still owed. */
  #unsynced: CheckpointResult | null = null;
  #pins = new Set<Pin>();
  /**
   * What committed CPs replaced: freed once the mirror committed the CP too
   * (`synced`) and no reader of an older CP remains.
   */
  #garbage: Array<{ cp: number; blocks: number[]; lsn: number; synced: boolean }> = [];
  #closed = false;
  #io: ViewSource;
  #mirror: boolean;
  /** Pair generation of the next CP (raised by a promotion). */
  #generation: number;
  /**
   * ETags computed on read for committed objects stored with an unknown one
   * (after ranged writes); an entry is dropped when a CP commits that key.
   */
  #etags = new Map<string, Uint8Array>();
  /** Why this store takes no more writes (its mirror was promoted over it), or null. */
  #fenced: string | null = null;
  /** Local durability of the last appended record: a CP covers only durable records. */
  #lastDurable: Promise<void> = Promise.resolve();
  /** The cause of the last CP failure, until a CP succeeds (repeats are logged at debug). */
  #lastCpFailure: string | null = null;
  readonly stats = {
    cp: { committed: 0, lastDurationMs: 0, durationsMs: [] as number[] },
    lsn: { last: 0, acked: 0 },
  };

  private constructor(dataDir: DataDir, volume: Volume, log: NvLog, options: StoreOptions) {
    this.#dir = dataDir.path;
    this.#ops = options.fileOps ?? nodeFileOps;
    this.#clock = options.clock ?? systemClock;
    this.volume = volume;
    this.log = log;
    this.options = options;
    this.#dataDir = dataDir;
    this.#log = options.logger ?? rootLogger();
    this.#io = { log, volume, logger: this.#log };
    this.#mirror = options.mirror === true;
    // A promotion records its generation before its CP: a crash between the two still raises it.
    this.#generation = Math.max(volume.superblock.pairGeneration, dataDir.pairGeneration);
    this.#catalog = new Catalog(volume, volume.superblock.catalogRoot);
  }

  /** Why this store was fenced (its destination was promoted), or null. */
  get fenced(): string | null {
    return this.#fenced;
  }

  /** True while this store mirrors a source (a destination not promoted). */
  get isMirror(): boolean {
    return this.#mirror;
  }

  /**
   * Destination: a CP sync committed CP `cp` on the volume. Reads move to it;
   * the blocks it released and the log it covers are freed once no reader of
   * an older CP remains.
   */
  adoptCommitted(cp: number, released: number[], lsnCovered: number): void {
    if (!this.#mirror) throw new Error("invariant: only a mirror adopts CPs from its source");
    this.#catalog = new Catalog(this.volume, this.superblock.catalogRoot);
    this.#etags.clear();
    this.#generation = this.superblock.pairGeneration;
    this.stats.cp.committed = cp;
    this.#garbage.push({ cp, blocks: released, lsn: lsnCovered, synced: true });
    this.#collect();
  }

  /**
   * Destination: become a source. Replays the durable log beyond the
   * committed CP (every write the old source acknowledged is in it), raises the
   * pair generation so the old source is refused, and commits a CP with it.
   */
  async promote(): Promise<CheckpointResult | null> {
    if (!this.#mirror) {
      throw new RefsyncError("conflict", "this appliance is already a source");
    }
    const started = this.#clock.monotonic();
    const generation = this.superblock.pairGeneration + 1;
    // The role first: after a crash before the CP below, the directory starts only as a
    // source, which replays the same log and commits the raised generation.
    this.#dataDir.promote(generation);
    this.#mirror = false;
    this.#generation = generation;
    this.#replay();
    this.stats.lsn.last = this.log.lastLsn;
    this.stats.lsn.acked = this.log.lastLsn;
    const result = await this.checkpoint(true);
    this.#log.info("promotion", {
      data: this.#dataDir.path,
      cp: this.superblock.cp,
      pairGeneration: generation,
      lsn: this.log.lastLsn,
      durationMs: Math.round(this.#clock.monotonic() - started),
    });
    return result;
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
      store.#markLive();
      if (!options.mirror) store.#replay();
    } catch (e) {
      await store.close();
      throw e;
    }
    store.stats.cp.committed = volume.superblock.cp;
    store.stats.lsn.last = log.lastLsn;
    store.stats.lsn.acked = log.lastLsn;
    return store;
  }

  /** The committed CP's superblock. */
  get superblock(): Superblock {
    return this.volume.superblock;
  }

  /** Dirty bytes not yet in a CP (the active layer). */
  get dirtyBytes(): number {
    return this.#activeBytes;
  }

  /** True when a CP committed here still owes its commit on the mirror. */
  get needsSync(): boolean {
    return this.#unsynced !== null;
  }

  /** Hex volume digest of the committed CP. */
  digest(): { cp: number; digest: string } {
    return { cp: this.superblock.cp, digest: toHex(this.superblock.volumeDigest) };
  }

  // ---------------------------------------------------------------- recovery

  #markLive(): void {
    const live = new Set<number>();
    this.#walkTree(this.superblock.catalogRoot, (block) => {
      live.add(block);
      this.volume.markLive(block);
    });
    // The previous CP's blocks stay reserved until the mirror is known to hold
    // the committed CP (a restart may have come between the two commits).
    const prev = this.volume.previousSuperblock;
    // A destination allocates nothing itself: its source decides which blocks are free.
    if (prev === null || this.#mirror) return;
    const blocks: number[] = [];
    try {
      this.#walkTree(prev.catalogRoot, (block) => {
        if (live.has(block)) return;
        if (block < 2 || block >= prev.blockCount) {
          throw new Error(`block ${block} not in CP ${prev.cp}`);
        }
        live.add(block);
        blocks.push(block);
      });
    } catch {
      // The previous CP's blocks are freed only once the committed CP is on both sides; a CP
      // that never committed may then have reused them (a crash mid-CP): nothing to keep.
      return;
    }
    for (const b of blocks) this.volume.markLive(b);
    this.#garbage.push({
      cp: this.superblock.cp,
      blocks,
      lsn: this.superblock.lsnCovered,
      synced: false,
    });
  }

  /** Visits every block of the tree under `root`: catalog nodes, map blocks, data blocks. */
  #walkTree(
    root: Superblock["catalogRoot"],
    visit: (block: number, birth: number, meta: boolean) => void,
  ): void {
    new Catalog(this.volume, root).walk(
      (node) => visit(node.block, node.birth, true),
      (_key, value) => {
        walkMap(this.volume, decodeRecord(value).map, (p, isMap) => visit(p.block, p.birth, isMap));
      },
    );
  }

  #replay(): void {
    const from = this.superblock.lsnCovered + 1;
    const ops = groupTransactions([...this.log.records(from)]);
    for (const op of ops) {
      const key = op.key;
      const keyBytes = encodeKey(key);
      if (op.kind === "delete") {
        this.#applyDelete(key, keyBytes, op.commitLsn, op.mtime);
        continue;
      }
      const extents = op.writes.map((w): Extent => ({
        start: w.offset,
        end: w.offset + w.length,
        lsn: w.lsn,
        position: w.position,
        payloadStart: 0,
        blockDigests: null,
      }));
      const end = op.replace ? op.size! : Math.max(0, ...extents.map((e) => e.end));
      this.#applyWrite(
        key,
        keyBytes,
        op.replace,
        end,
        extents,
        op.etag ?? null,
        op.meta ?? null,
        op.mtime,
        op.commitLsn,
      );
    }
    // Transactions left open by a crash are never committed: drop them from view.
  }

  // ------------------------------------------------------------------ writes

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
   * returns (at most {@link MAX_META_BYTES}) is committed with the object in
   * its COMMIT record and served by {@link stat} and {@link list}. The API
   * that writes it owns its content. Throwing from it aborts the write.
   */
  async write(
    key: string,
    body: ReadableStream<Uint8Array> | null,
    opts: {
      replace: boolean;
      offset: number;
      length?: number;
      precondition?: Precondition;
      meta?: () => Uint8Array;
    },
  ): Promise<WriteResult> {
    this.#assertOpen();
    const keyBytes = encodeKey(key);
    if (opts.meta && !opts.replace) throw new Error("invariant: metadata needs a whole PUT");
    const limit = this.options.maxObjectBytes;
    if (opts.offset + (opts.length ?? 0) > limit) {
      throw new RefsyncError("too_large", `the object would exceed --max-object-bytes (${limit})`);
    }
    opts.precondition?.(this.#current(key));
    await this.#waitForRoom();
    // Refused before any of the body is read when its announced length cannot fit.
    if (opts.length !== undefined) {
      await this.#makeRoom(opts.length, key);
      this.#claimSpace(opts.length, key);
    }
    let created = false;
    /** Decides the write at its last record: nothing may run between this and the apply. */
    const settle = () => {
      const current = this.#current(key);
      opts.precondition?.(current);
      created = current === null;
    };
    const hasher = opts.replace ? new Blake3Hasher({ blockDigests: false }) : null;
    const pieces = rechunk(body, RECORD_PAYLOAD_BYTES, opts.length);
    let piece = await pieces.next();
    let offset = opts.offset;
    let txn = 0;
    const staged: Extent[] = [];
    let stagedBytes = 0;
    const pending: Promise<void>[] = [];
    let lastLsn = 0;
    try {
      while (true) {
        const data = piece.done ? new Uint8Array(0) : piece.value;
        const next = piece.done ? piece : await pieces.next();
        const last = next.done === true;
        if (offset + data.length > limit) {
          throw new RefsyncError("too_large", `the object exceeds --max-object-bytes (${limit})`);
        }
        const total = offset + data.length - opts.offset;
        if (opts.length !== undefined && (total > opts.length || (last && total !== opts.length))) {
          throw new RefsyncError(
            "bad_range",
            `the body has ${
              last ? total : "more than " + opts.length
            } bytes but Content-Range announced ${opts.length}`,
          );
        }
        // A blob travels in the COMMIT record: a write with one is always a transaction.
        const single = txn === 0 && last && !opts.meta;
        // A one-record PUT's ETag is its frame's payload digest: hash only longer bodies here.
        if (!single) hasher?.update(data);
        await this.#makeRoom(data.length, key);
        if (single) settle();
        const flags = single ? Flag.COMMIT_NOW | (opts.replace ? Flag.REPLACE : 0) : 0;
        const mtime = this.#clock.now();
        // Checked right before the append (no await between): concurrent writers cannot both
        // take the same room.
        this.#claimSpace(data.length, key);
        const { appended, done } = this.#append({
          op: Op.WRITE,
          flags,
          key,
          txn: txn === 0 ? "self" : txn,
          offset,
          mtime,
        }, data);
        pending.push(done);
        if (txn === 0 && !single) {
          txn = appended.lsn;
          this.#inflight.add(txn);
        }
        const extent: Extent = {
          start: offset,
          end: offset + data.length,
          lsn: appended.lsn,
          position: appended.position,
          payloadStart: 0,
          blockDigests: appended.blockDigests,
        };
        offset += data.length;
        lastLsn = appended.lsn;
        if (single) {
          const etag = opts.replace ? appended.frame.slice(48, 80) : null;
          this.#applyWrite(
            key,
            keyBytes,
            opts.replace,
            offset,
            [extent],
            etag,
            null,
            mtime,
            lastLsn,
          );
        } else {
          staged.push(extent);
          stagedBytes += data.length;
          this.#stagedBytes += data.length;
        }
        if (pending.length >= 8) await pending.shift();
        if (last) break;
        piece = next;
      }
      const size = offset;
      let etag: Uint8Array | null = null;
      if (txn !== 0) {
        etag = hasher ? hasher.digest() : null;
        const meta = opts.meta?.() ?? null;
        if (meta && meta.length > MAX_META_BYTES) {
          throw new Error(
            `invariant: metadata of ${meta.length} bytes (at most ${MAX_META_BYTES})`,
          );
        }
        settle();
        const mtime = this.#clock.now();
        const { appended, done } = this.#append({
          op: Op.COMMIT,
          flags: opts.replace ? Flag.REPLACE : 0,
          key,
          txn,
          offset: opts.replace ? size : 0,
          mtime,
        }, etag ? (meta ? concatBytes(etag, meta) : etag) : new Uint8Array(0));
        this.#inflight.delete(txn);
        txn = 0;
        pending.push(done);
        lastLsn = appended.lsn;
        this.#stagedBytes -= stagedBytes;
        stagedBytes = 0;
        this.#applyWrite(key, keyBytes, opts.replace, size, staged, etag, meta, mtime, lastLsn);
      } else if (hasher) {
        etag = this.#active.get(key)?.etag ?? null;
      }
      // The size this write left, read now: a CP may freeze the active layer while we wait.
      const newSize = opts.replace ? size : (this.#active.get(key)?.size ?? size);
      await Promise.all(pending);
      this.stats.lsn.acked = Math.max(this.stats.lsn.acked, lastLsn);
      this.#maybeCheckpoint();
      return {
        key,
        size: newSize,
        etag: etag ? toHex(etag) : null,
        lsn: lastLsn,
        created,
      };
    } catch (e) {
      // An uncommitted transaction stays in the log but is never applied.
      if (txn !== 0) this.#inflight.delete(txn);
      this.#stagedBytes -= stagedBytes;
      await Promise.allSettled(pending);
      await pieces.return(undefined);
      throw e;
    }
  }

  /**
   * Deletes `key`; null when there was no such object. A `precondition` is
   * checked against the object when the delete is applied.
   */
  async delete(
    key: string,
    opts: { precondition?: Precondition } = {},
  ): Promise<{ lsn: number } | null> {
    this.#assertOpen();
    const keyBytes = encodeKey(key);
    const current = this.#current(key);
    if (current === null) return null;
    opts.precondition?.(current);
    // No waiting for room, no space claim: a DELETE adds no dirty bytes, its record is small
    // (the reserve holds it), and it is how a full disk is emptied.
    const mtime = this.#clock.now();
    const { appended, done } = this.#append(
      { op: Op.DELETE, key, mtime },
      new Uint8Array(0),
    );
    this.#applyDelete(key, keyBytes, appended.lsn, mtime);
    await done;
    this.stats.lsn.acked = Math.max(this.stats.lsn.acked, appended.lsn);
    return { lsn: appended.lsn };
  }

  #append(
    fields: AppendFields,
    payload: Uint8Array,
  ): { appended: Appended; done: Promise<void> } {
    // Fenced: nothing more is logged, so nothing refused is ever applied.
    if (this.#fenced !== null) throw new RefsyncError("fenced", this.#fenced);
    const { records: written, durable } = this.log.write([{ fields, payload }]);
    this.#lastDurable = durable.catch(() => {});
    const remote = this.options.replicate ? this.options.replicate(written) : Promise.resolve();
    const done = Promise.all([durable, remote]).then(() => {});
    done.catch(() => {}); // awaited by the writer; this only silences the early rejection
    this.stats.lsn.last = written[written.length - 1].lsn;
    return { appended: written[0], done };
  }

  #applyWrite(
    key: string,
    keyBytes: Uint8Array,
    replace: boolean,
    end: number,
    extents: Extent[],
    etag: Uint8Array | null,
    meta: Uint8Array | null,
    mtime: number,
    lsn: number,
  ): void {
    let d = this.#active.get(key);
    if (replace || !d) {
      const below = replace ? null : this.#viewBelowActive(key);
      const old = d;
      d = {
        key,
        keyBytes,
        deleted: false,
        replace: replace || below === null,
        size: replace ? end : (below?.size ?? 0),
        mtime,
        etag: null,
        meta: null,
        extents: [],
        lastLsn: lsn,
      };
      if (old) this.#activeBytes -= extentBytes(old.extents);
      this.#active.set(key, d);
    }
    if (d.deleted) {
      d.deleted = false;
      d.size = 0;
    }
    for (const e of extents) {
      addExtent(d.extents, e);
      d.size = Math.max(d.size, e.end);
    }
    if (!replace) d.size = Math.max(d.size, end);
    this.#activeBytes += extents.reduce((n, e) => n + e.end - e.start, 0);
    d.etag = etag;
    d.meta = meta;
    d.mtime = mtime;
    d.lastLsn = lsn;
  }

  #applyDelete(key: string, keyBytes: Uint8Array, lsn: number, mtime: number): void {
    const old = this.#active.get(key);
    if (old) this.#activeBytes -= extentBytes(old.extents);
    this.#active.set(key, {
      key,
      keyBytes,
      deleted: true,
      replace: true,
      size: 0,
      mtime,
      etag: null,
      meta: null,
      extents: [],
      lastLsn: lsn,
    });
  }

  async #waitForRoom(): Promise<void> {
    // Back pressure: past twice the threshold, writers wait for a CP instead of growing memory.
    for (let i = 0; this.#activeBytes >= 2 * this.options.cpDirtyBytes && i < 1000; i++) {
      try {
        await this.checkpoint();
      } catch (e) {
        const code = isError(e, "no_space") ? "no_space" : "unavailable";
        throw new RefsyncError(code, `write buffer full and CP failed: ${errorText(e)}`);
      }
    }
  }

  /**
   * Space accounting of client writes: the bytes the filesystem would have
   * left beyond the reserve once a record of `bytes` (to `key`) is logged and
   * the CPs have written everything logged into the volume; negative when it
   * does not fit. A logged byte is stored twice until the CP that covers it
   * is committed on both sides: in the log now, in the volume at that CP (the
   * log segment goes after it). The volume's unused blocks take CP writes
   * before the file grows, but never log records. The backlog is what is
   * logged and not yet in a CP; the reserve is what CP metadata, DELETE and
   * COMMIT records use. Infinity when the free space is unknown (no statfs).
   */
  #spaceLeft(bytes: number, key: string): number {
    const available = this.#ops.availableBytes(this.#dir);
    if (!Number.isFinite(available)) return Infinity;
    const data = this.#activeBytes + this.#frozenBytes + this.#stagedBytes + bytes;
    const objects = this.#active.size + (this.#frozen?.size ?? 0) + 1;
    // Per object a partial block and a share of catalog and map blocks; maps cost 1/511 of data.
    const backlog = data + Math.ceil(data / 256) + objects * 2 * BLOCK_SIZE;
    const growth = Math.max(0, backlog - this.volume.unusedBytes);
    const record = bytes + BLOCK_SIZE + key.length; // frame header, key, rounding
    return available - record - growth - this.#reserve;
  }

  get #reserve(): number {
    return this.options.spaceReserve ?? DEFAULT_SPACE_RESERVE;
  }

  /**
   * While a record of `bytes` does not fit but a CP could make room, waits
   * for one (at most three). A CP moves logged bytes into the volume and frees
   * what older CPs released; the log is dropped one CP behind (a torn newest
   * superblock falls back to the previous CP, whose replay needs it), so when
   * the log still holds records the committed CP covers, an empty CP is taken
   * to let them go.
   */
  async #makeRoom(bytes: number, key: string): Promise<void> {
    for (let i = 0; i < 3 && this.#spaceLeft(bytes, key) < 0; i++) {
      const dirty = this.#active.size > 0 || this.#frozen !== null;
      const droppable = this.log.firstLsn <= this.superblock.lsnCovered;
      if (!dirty && !droppable && this.#garbage.length === 0) return;
      await this.checkpoint(!dirty).catch(() => {/* #claimSpace says what is left */});
    }
  }

  /** Refuses (`no_space`) a client record of `bytes` that would leave the CPs unable to write the log. */
  #claimSpace(bytes: number, key: string): void {
    const left = this.#spaceLeft(bytes, key);
    if (left >= 0) return;
    throw new RefsyncError(
      "no_space",
      `no space for this write: about ${-left} bytes more are needed (a write is logged now ` +
        `and written into the volume at the next CP) beyond the ${this.#reserve}-byte reserve ` +
        `kept for CPs and deletes. Delete objects: the CP that follows frees their space.`,
      { missingBytes: -left, reserveBytes: this.#reserve },
    );
  }

  #maybeCheckpoint(): void {
    if (this.#activeBytes >= this.options.cpDirtyBytes && this.#cpRunning === null) {
      this.checkpoint().catch(() => {/* the next trigger retries; stats show the failure */});
    }
  }

  // ------------------------------------------------------------------- reads

  /** Size, ETag and mtime of `key`, or null when it does not exist. */
  stat(key: string): ObjectInfo | null {
    const view = this.#view(key);
    if (view === null) return null;
    return {
      key,
      size: view.size,
      mtime: view.mtime,
      etag: this.#etagOf(key, view),
      meta: view.meta,
    };
  }

  /** {@link stat} with the ETag computed only when read (a precondition may not need it). */
  #current(key: string): ObjectInfo | null {
    const view = this.#view(key);
    if (view === null) return null;
    const etagOf = () => this.#etagOf(key, view);
    let etag: string | null = null;
    return {
      key,
      size: view.size,
      mtime: view.mtime,
      meta: view.meta,
      get etag() {
        return etag ??= etagOf();
      },
    };
  }

  /** The hex ETag of `view`, hashing the bytes when it is unknown (after ranged writes). */
  #etagOf(key: string, view: View): string {
    if (view.etag === null) {
      const top = this.#active.get(key) ?? this.#frozen?.get(key);
      view.etag = top ? null : this.#etags.get(key) ?? null;
      view.etag ??= hashView(view, this.#io);
      if (top) top.etag ??= view.etag;
      else this.#rememberEtag(key, view.etag);
    }
    return toHex(view.etag);
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
    const view = this.#view(key);
    if (view === null) throw new RefsyncError("not_found", `no object with key '${key}'`);
    if (start < 0 || end > view.size || start > end) {
      throw new RefsyncError("range_not_satisfiable", `range outside object of ${view.size} bytes`);
    }
    const idleMs = this.options.readIdleMs ?? READ_IDLE_MS;
    const pin = this.#pin(key);
    let pos = start;
    let first: Uint8Array | null = null;
    try {
      if (start < end) first = readChunk(view, start, end, RECORD_PAYLOAD_BYTES, this.#io);
    } catch (e) {
      this.#unpin(pin);
      throw e;
    }
    const awaitPull = () => {
      this.#clock.clearTimeout(pin.timer);
      pin.timer = this.#clock.setTimeout(() => {
        this.#log.warn("store.read_abandoned", {
          key,
          cp: pin.cp,
          idleMs,
          sentBytes: pos - start,
          bytes: end - start,
        });
        this.#unpin(pin);
      }, idleMs);
    };
    awaitPull();
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        this.#clock.clearTimeout(pin.timer);
        if (pin.released) {
          controller.error(
            new RefsyncError(
              "request_timeout",
              `the read of '${key}' was released (not continued for ${idleMs} ms, or the store closed)`,
            ),
          );
          return;
        }
        try {
          if (pos < end) {
            const out = first ?? readChunk(view, pos, end, RECORD_PAYLOAD_BYTES, this.#io);
            first = null;
            pos += out.length;
            controller.enqueue(out);
          }
          // Ended with the last chunk: a consumer that stops at Content-Length pulls no more.
          if (pos >= end) {
            this.#unpin(pin);
            controller.close();
          } else {
            awaitPull();
          }
        } catch (e) {
          this.#unpin(pin);
          controller.error(e);
        }
      },
      cancel: () => this.#unpin(pin),
    }, { highWaterMark: 0 });
  }

  /** Objects in key order (UTF-8 byte order), with `prefix`, after `startAfter`. */
  list(opts: { prefix?: string; startAfter?: string; limit: number }): {
    objects: ObjectInfo[];
    next: string | null;
  } {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const prefix = opts.prefix ? enc.encode(opts.prefix) : undefined;
    let after: Uint8Array | undefined = opts.startAfter === undefined
      ? undefined
      : enc.encode(opts.startAfter);
    // Keys written since the last CP may not be in the catalog yet: merge them in.
    const dirty = [...new Set([...this.#active.keys(), ...(this.#frozen?.keys() ?? [])])]
      .map((k) => enc.encode(k))
      .filter((b) => !prefix || startsWith(b, prefix))
      .sort(compare);
    const objects: ObjectInfo[] = [];
    for (let round = 0; round < 1_000_000; round++) {
      const page = this.#catalog.list({ prefix, startAfter: after, limit: opts.limit + 1 });
      const bound = page.more ? page.entries[page.entries.length - 1].key : undefined;
      const candidates = page.entries.map((e) => e.key);
      for (const b of dirty) {
        if (after && compare(b, after) <= 0) continue;
        if (bound && compare(b, bound) > 0) break;
        candidates.push(b);
      }
      candidates.sort(compare);
      let previous: Uint8Array | undefined;
      for (const b of candidates) {
        if (previous && compare(previous, b) === 0) continue;
        previous = b;
        const key = dec.decode(b);
        const info = this.stat(key);
        if (!info) continue;
        if (objects.length === opts.limit) {
          return { objects, next: objects[objects.length - 1].key };
        }
        objects.push(info);
      }
      if (!bound) return { objects, next: null };
      after = bound;
    }
    throw new Error("invariant: listing did not terminate");
  }

  #view(key: string): View | null {
    return buildView(key, [this.#active, this.#frozen], this.#catalog);
  }

  #viewBelowActive(key: string): { size: number } | null {
    const d = this.#frozen?.get(key);
    if (d) return d.deleted ? null : { size: d.size };
    const value = this.#catalog.get(encodeKey(key));
    return value ? { size: decodeRecord(value).size } : null;
  }

  #pin(key: string): Pin {
    const pin: Pin = {
      cp: this.superblock.cp,
      key,
      since: this.#clock.monotonic(),
      warned: false,
      released: false,
    };
    this.#pins.add(pin);
    return pin;
  }

  #unpin(pin: Pin): void {
    this.#clock.clearTimeout(pin.timer);
    if (pin.released) return;
    pin.released = true;
    this.#pins.delete(pin);
    this.#collect();
  }

  /** Frees what committed CPs replaced, once no reader of an older CP remains. */
  #collect(): void {
    while (this.#garbage.length > 0) {
      const g = this.#garbage[0];
      if (!g.synced) return;
      const holders = [...this.#pins].filter((p) => p.cp < g.cp);
      if (holders.length > 0) {
        this.#warnOldPins(holders);
        return;
      }
      this.#garbage.shift();
      this.volume.free(g.blocks);
      // A torn newest superblock falls back to the previous CP: keep the log its replay needs.
      const fallback = this.volume.previousSuperblock?.lsnCovered ?? g.lsn;
      this.log.dropThrough(Math.min(g.lsn, fallback));
    }
  }

  /** Logs, once each, the readers that have held back reclamation past the bound. */
  #warnOldPins(holders: Pin[]): void {
    const bound = this.options.pinWarnMs ?? PIN_WARN_MS;
    const now = this.#clock.monotonic();
    for (const p of holders) {
      if (p.warned || now - p.since < bound) continue;
      p.warned = true;
      this.#log.warn("store.pin_held", {
        key: p.key,
        cp: p.cp,
        ageMs: Math.round(now - p.since),
        garbageCps: this.#garbage.length,
      });
    }
  }

  #rememberEtag(key: string, etag: Uint8Array): void {
    if (this.#etags.size >= ETAG_CACHE_ENTRIES) {
      this.#etags.delete(this.#etags.keys().next().value!);
    }
    this.#etags.set(key, etag);
  }

  // --------------------------------------------------------------------- CP

  /**
   * Takes a CP now (or joins the one running) and resolves when it is
   * committed here and, with a mirror, there. Resolves null when nothing was
   * dirty.
   */
  checkpoint(force = false): Promise<CheckpointResult | null> {
    this.#assertOpen();
    if (this.#mirror) {
      throw new RefsyncError("conflict", "a destination takes CPs only from its source");
    }
    if (this.#cpRunning) {
      // Join: a write that waited must see its data in a CP, so run one more after this one.
      return this.#cpRunning.catch(() => {}).then(() => this.checkpoint(force));
    }
    const started = this.#clock.monotonic();
    const run = this.#runCheckpoint(force).then(
      (result) => {
        if (result) this.#logCommitted(result, this.#clock.monotonic() - started);
        this.#lastCpFailure = null;
        return result;
      },
      (e) => {
        this.#logFailed(e);
        throw e;
      },
    ).finally(() => {
      this.#cpRunning = null;
    });
    this.#cpRunning = run;
    return run;
  }

  async #runCheckpoint(force: boolean): Promise<CheckpointResult | null> {
    await this.options.ready?.();
    if (this.#unsynced) {
      await this.options.syncCheckpoint!(this.#unsynced);
      this.#afterSync(this.#unsynced);
    }
    if (this.#active.size === 0 && !force) return null;
    const started = this.#clock.monotonic();
    const frozen = this.#active;
    const lsnCovered = Math.min(this.stats.lsn.last, Math.min(...this.#inflight) - 1);
    this.#frozen = frozen;
    this.#frozenBytes = this.#activeBytes;
    this.#active = new Map();
    this.#activeBytes = 0;
    const tx = this.volume.beginCp();
    let result: CheckpointResult;
    try {
      // The superblock will claim every record <= lsnCovered: they must be on disk first.
      await this.#lastDurable;
      let holds = lsnCovered;
      for (const d of frozen.values()) holds = Math.max(holds, d.lastLsn);
      await this.options.mirrorHolds?.(holds);
      result = await this.#writeAndCommit(tx, frozen, lsnCovered, started);
    } catch (e) {
      tx.abort();
      this.#catalog = new Catalog(this.volume, this.superblock.catalogRoot);
      // Put the frozen writes back under anything written since.
      for (const [k, d] of frozen) {
        const newer = this.#active.get(k);
        if (!newer) {
          this.#active.set(k, d);
          this.#activeBytes += extentBytes(d.extents);
        } else if (!newer.replace) {
          for (const e of newer.extents) addExtent(d.extents, e);
          d.size = Math.max(d.size, newer.size);
          d.etag = newer.etag;
          d.meta = null;
          d.mtime = newer.mtime;
          d.lastLsn = newer.lastLsn;
          this.#active.set(k, d);
          this.#activeBytes += extentBytes(d.extents) - extentBytes(newer.extents);
        }
      }
      this.#frozen = null;
      this.#frozenBytes = 0;
      throw e;
    }
    if (this.options.syncCheckpoint) {
      this.#unsynced = result;
      await this.options.syncCheckpoint(result);
    }
    this.#afterSync(result);
    return result;
  }

  async #writeAndCommit(
    tx: CpTransaction,
    frozen: Map<string, DirtyObject>,
    lsnCovered: number,
    started: number,
  ): Promise<CheckpointResult> {
    const previous = this.superblock;
    // The CP's tree is built in a catalog of its own: readers keep the committed tree
    // (under the frozen layer) until the new one is on disk.
    const catalog = new Catalog(this.volume, this.#catalog.root);
    const { catalogRoot, zeroBlocks } = await writeCheckpoint(
      tx,
      catalog,
      this.log,
      frozen,
      this.#clock,
    );
    const fields = {
      cp: tx.cp,
      lsnCovered,
      catalogRoot,
      blockCount: tx.blockCount,
      pairGeneration: this.#generation,
    };
    const volumeDigest = nextVolumeDigest(
      previous.volumeDigest,
      cpContentDigest(tx.written),
      fields,
    );
    // A promotion's CP (the generation changes) marks where the new generation's history began.
    const promotedAtLsn = this.#generation === previous.pairGeneration
      ? previous.promotedAtLsn
      : lsnCovered;
    const sb = await tx.commit({ ...previous, ...fields, volumeDigest, promotedAtLsn });
    // The new tree is on disk: reads move to it, and the frozen layer is now in it.
    this.#catalog = catalog;
    this.#frozen = null;
    this.#frozenBytes = 0;
    for (const key of frozen.keys()) this.#etags.delete(key);
    const durationMs = this.#clock.monotonic() - started;
    this.stats.cp.committed = sb.cp;
    this.stats.cp.lastDurationMs = durationMs;
    this.stats.cp.durationsMs.push(durationMs);
    if (this.stats.cp.durationsMs.length > 1024) this.stats.cp.durationsMs.shift();
    this.options.cpCommitted?.(durationMs);
    this.#garbage.push({ cp: sb.cp, blocks: tx.released, lsn: lsnCovered, synced: false });
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
   * const aside = await store.fence("the destination was promoted", state.promotedAtLsn, `${dir}/quarantine`);
   * if (aside) console.log(`set aside LSN ${aside.firstLsn}..${aside.lastLsn} in ${aside.file}`);
   * ```
   */
  async fence(
    reason: string,
    keepLsn: number,
    quarantineDir: string,
  ): Promise<{ file: string; firstLsn: number; lastLsn: number } | null> {
    this.#assertOpen();
    this.#fenced = reason;
    // A running CP is abandoned by its mirror (mirrorHolds rejects) or has committed.
    await this.#cpRunning?.catch(() => {});
    const keep = Math.max(keepLsn, this.superblock.lsnCovered);
    const lastLsn = this.log.lastLsn;
    if (lastLsn <= keep) return null;
    const file = await this.log.copyFramesAfter(keep, quarantineDir);
    await this.log.truncateAfter(keep);
    this.#active = new Map();
    this.#activeBytes = 0;
    this.#inflight.clear();
    this.#replay();
    this.stats.lsn.last = this.log.lastLsn;
    this.stats.lsn.acked = Math.min(this.stats.lsn.acked, this.log.lastLsn);
    return { file, firstLsn: keep + 1, lastLsn };
  }

  /**
   * `cp.committed` is a debug event: at the default of one CP a second, info
   * would bury the state changes an operator acts on (the CP counters are in
   * /v1/admin/stats).
   */
  #logCommitted(result: CheckpointResult, totalMs: number): void {
    if (!this.#log.enabled("debug")) return;
    const w = result.written;
    let meta = 0;
    for (let row = 0; row < w.count; row++) if (w.kind(row) === "meta") meta++;
    this.#log.debug("cp.committed", {
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
    const level = cause === this.#lastCpFailure
      ? "debug"
      : isError(e, "corrupt")
      ? "error"
      : "warn";
    this.#lastCpFailure = cause;
    this.#log[level]("cp.failed", { cp: this.superblock.cp + 1, cause });
  }

  /** Records that the mirror still owes the commit of `result` (a resync after a restart). */
  markUnsynced(result: CheckpointResult): void {
    this.#unsynced = result;
  }

  /**
   * Rebuilds the CP sync input of the committed CP from the volume: every
   * block born in it (a tree walk by birth CP), as DATA, and what it released
   * (live in the previous CP, not in this one). Used when the source restarted
   * between its own commit and the mirror's.
   */
  rebuildLastCheckpoint(): CheckpointResult {
    const sb = this.superblock;
    const prev = this.volume.previousSuperblock;
    if (prev === null) {
      throw new Error(
        `CP ${sb.cp - 1} is no longer on the volume; the destination needs a full resync`,
      );
    }
    const liveIn = this.#walkTree.bind(this);
    const written = new WrittenBlocks();
    const current = new Set<number>();
    liveIn(sb.catalogRoot, (block, birth, meta) => {
      current.add(block);
      if (birth === sb.cp) {
        const row = written.add(block, meta ? "meta" : "data", 0);
        written.setDigest(row, blake3(this.volume.readBlock(block)));
      }
    });
    const released = new Set<number>();
    liveIn(prev.catalogRoot, (block) => {
      if (!current.has(block)) released.add(block);
    });
    return {
      superblock: sb,
      superblockBytes: encodeSuperblock(sb),
      written,
      released: [...released],
      zeroBlocks: 0,
      previousDigest: prev.volumeDigest,
      durationMs: 0,
    };
  }

  #afterSync(result: CheckpointResult): void {
    if (this.#unsynced === result) this.#unsynced = null;
    for (const g of this.#garbage) g.synced = true;
    this.#collect();
  }

  /** Flushes nothing further; closes the files. Pending writes must be finished. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Open read streams end here: they error if pulled, and their timers stop.
    for (const p of this.#pins) {
      this.#clock.clearTimeout(p.timer);
      p.released = true;
    }
    this.#pins.clear();
    await this.#cpRunning?.catch(() => {});
    try {
      await this.log.close();
      this.volume.close();
    } finally {
      // Released even when a file fails to close: the directory must not stay locked.
      this.#dataDir.close();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new RefsyncError("unavailable", "the store is closed");
  }
}

/**
 * Re-chunks a byte stream into pieces of `size` bytes (the last may be
 * shorter). Buffers are sized to what is coming: to the announced length when
 * there is one, else grown from 64 KiB, so a 4 KiB PUT never allocates and
 * zeroes a whole record's worth.
 */
async function* rechunk(
  body: ReadableStream<Uint8Array> | null,
  size: number,
  expected: number | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  let remaining = expected;
  const capacity = () =>
    remaining === undefined ? Math.min(size, 64 << 10) : Math.min(size, Math.max(remaining, 1));
  let buf = new Uint8Array(capacity());
  let spare: Uint8Array<ArrayBuffer> | null = null;
  let fill = 0;
  for await (const chunk of readBody(body)) {
    let off = 0;
    while (off < chunk.length) {
      if (fill === buf.length) {
        if (buf.length < size && remaining === undefined) {
          const grown = new Uint8Array(Math.min(size, buf.length * 2));
          grown.set(buf);
          buf = grown;
        } else {
          yield buf;
          if (remaining !== undefined) remaining = Math.max(0, remaining - buf.length);
          // The consumer holds at most the piece it is logging and the one read ahead,
          // so full-size buffers alternate instead of churning 1 MiB allocations.
          const reuse = spare !== null && spare.length === capacity() ? spare : null;
          spare = buf.length === size ? buf : null;
          buf = reuse ?? new Uint8Array(capacity());
          fill = 0;
        }
      }
      const n = Math.min(buf.length - fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/**
 * The body's chunks; a body that breaks off (client gone) is a 400, not an
 * internal error. A body that fails with a domain error (a stalled client cut
 * off with `request_timeout`) keeps its code.
 */
async function* readBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
        if (e instanceof RefsyncError) throw e;
        throw new RefsyncError(
          "bad_request",
          `the request body ended early: ${e instanceof Error ? e.message : e}`,
        );
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Stopped early (a limit, a bad range): cancel the rest of the body.
    await reader.cancel().catch(() => {});
  }
}

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function startsWith(a: Uint8Array, prefix: Uint8Array): boolean {
  if (a.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

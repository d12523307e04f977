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
import { RefsyncError } from "../../errors/mod.ts";
import { Flag, Op } from "../../protocol/log-frame/mod.ts";
import { Catalog } from "../catalog/mod.ts";
import { walkMap } from "../blockmap/blockmap.ts";
import { type Appended, type AppendFields, groupTransactions, NvLog } from "../log/mod.ts";
import { cpContentDigest, nextVolumeDigest } from "../volume/digest.ts";
import { encodeSuperblock, type Superblock } from "../volume/superblock.ts";
import { type CpTransaction, Volume } from "../volume/volume.ts";
import { WrittenBlocks } from "../volume/written.ts";
import { writeCheckpoint } from "./checkpoint.ts";
import { buildView, fillView, hashView, type View, type ViewSource } from "./view.ts";
import { encodeKey } from "./key.ts";
import { addExtent, type DirtyObject, type Extent, extentBytes } from "./overlay.ts";
import { decodeRecord, MAX_META_BYTES } from "./record.ts";

/** Largest payload of one log record: a bigger write is a multi-record transaction. */
export const RECORD_PAYLOAD_BYTES = 1 << 20;
/** Computed ETags of committed objects kept in memory. */
const ETAG_CACHE_ENTRIES = 4096;

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
 * A store in a directory: `volume.dat` and `log/`.
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
  #catalog: Catalog;
  #active = new Map<string, DirtyObject>();
  #frozen: Map<string, DirtyObject> | null = null;
  #activeBytes = 0;
  /** First LSNs of transactions that have records in the log but no COMMIT yet. */
  #inflight = new Set<number>();
  #cpRunning: Promise<CheckpointResult | null> | null = null;
  /** A CP committed here whose mirror commit is still owed. */
  #unsynced: CheckpointResult | null = null;
  #pins = new Map<number, number>();
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
  /** Local durability of the last appended record: a CP covers only durable records. */
  #lastDurable: Promise<void> = Promise.resolve();
  readonly stats = {
    cp: { committed: 0, lastDurationMs: 0, durationsMs: [] as number[] },
    lsn: { last: 0, acked: 0 },
  };

  private constructor(volume: Volume, log: NvLog, options: StoreOptions) {
    this.volume = volume;
    this.log = log;
    this.options = options;
    this.#io = { log, volume };
    this.#mirror = options.mirror === true;
    this.#generation = volume.superblock.pairGeneration;
    this.#catalog = new Catalog(volume, volume.superblock.catalogRoot);
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
    this.#mirror = false;
    this.#generation = this.superblock.pairGeneration + 1;
    this.#replay();
    this.stats.lsn.last = this.log.lastLsn;
    this.stats.lsn.acked = this.log.lastLsn;
    return await this.checkpoint(true);
  }

  /** Opens (or creates) the store in `dir` and recovers: best superblock + log replay. */
  static async open(dir: string, options: StoreOptions): Promise<ObjectStore> {
    await Deno.mkdir(`${dir}/log`, { recursive: true });
    const volume = await Volume.open(`${dir}/volume.dat`);
    const log = await NvLog.open(`${dir}/log`, { segmentSize: options.logSegmentBytes });
    const store = new ObjectStore(volume, log, options);
    store.#markLive();
    if (!options.mirror) store.#replay();
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
   * `meta` (whole PUTs only) is called once the body has ended; the blob it
   * returns (at most {@link MAX_META_BYTES}) is committed with the object in
   * its COMMIT record and served by {@link stat} and {@link list}. The API
   * that writes it owns its content. Throwing from it aborts the write.
   */
  async write(
    key: string,
    body: ReadableStream<Uint8Array> | null,
    opts: { replace: boolean; offset: number; length?: number; meta?: () => Uint8Array },
  ): Promise<WriteResult> {
    this.#assertOpen();
    const keyBytes = encodeKey(key);
    if (opts.meta && !opts.replace) throw new Error("invariant: metadata needs a whole PUT");
    const limit = this.options.maxObjectBytes;
    if (opts.offset + (opts.length ?? 0) > limit) {
      throw new RefsyncError("too_large", `the object would exceed --max-object-bytes (${limit})`);
    }
    await this.#waitForRoom();
    const created = this.#view(key) === null;
    const hasher = opts.replace ? new Blake3Hasher({ blockDigests: false }) : null;
    const pieces = rechunk(body, RECORD_PAYLOAD_BYTES, opts.length);
    let piece = await pieces.next();
    let offset = opts.offset;
    let txn = 0;
    const staged: Extent[] = [];
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
        const flags = single ? Flag.COMMIT_NOW | (opts.replace ? Flag.REPLACE : 0) : 0;
        const mtime = Date.now();
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
        const mtime = Date.now();
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
      await Promise.allSettled(pending);
      await pieces.return(undefined);
      throw e;
    }
  }

  /** Deletes `key`; false when there was no such object. */
  async delete(key: string): Promise<{ lsn: number } | null> {
    this.#assertOpen();
    const keyBytes = encodeKey(key);
    if (this.#view(key) === null) return null;
    await this.#waitForRoom();
    const mtime = Date.now();
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
        throw new RefsyncError("unavailable", `write buffer full and CP failed: ${errorText(e)}`);
      }
    }
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
    if (view.etag === null) {
      const top = this.#active.get(key) ?? this.#frozen?.get(key);
      view.etag = top ? null : this.#etags.get(key) ?? null;
      view.etag ??= hashView(view, this.#io);
      if (top) top.etag ??= view.etag;
      else this.#rememberEtag(key, view.etag);
    }
    return { key, size: view.size, mtime: view.mtime, etag: toHex(view.etag), meta: view.meta };
  }

  /**
   * Streams bytes `[start, end)` of `key` as they are now: later writes and
   * CPs do not change what an open stream returns (the blocks and log it
   * reads are kept until it ends).
   */
  read(key: string, start: number, end: number): ReadableStream<Uint8Array> {
    const view = this.#view(key);
    if (view === null) throw new RefsyncError("not_found", `no object with key '${key}'`);
    if (start < 0 || end > view.size || start > end) {
      throw new RefsyncError("range_not_satisfiable", `range outside object of ${view.size} bytes`);
    }
    const unpin = this.#pin();
    let pos = start;
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        try {
          if (pos >= end) {
            unpin();
            controller.close();
            return;
          }
          const n = Math.min(RECORD_PAYLOAD_BYTES, end - pos);
          const out = new Uint8Array(n);
          fillView(view, pos, pos + n, out, this.#io);
          pos += n;
          controller.enqueue(out);
        } catch (e) {
          unpin();
          controller.error(e);
        }
      },
      cancel: () => unpin(),
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

  #pin(): () => void {
    const cp = this.superblock.cp;
    this.#pins.set(cp, (this.#pins.get(cp) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.#pins.get(cp)! - 1;
      if (n === 0) this.#pins.delete(cp);
      else this.#pins.set(cp, n);
      this.#collect();
    };
  }

  /** Frees what committed CPs replaced, once no reader of an older CP remains. */
  #collect(): void {
    while (this.#garbage.length > 0) {
      const g = this.#garbage[0];
      const oldestPin = Math.min(...this.#pins.keys());
      if (!g.synced || oldestPin < g.cp) return;
      this.#garbage.shift();
      this.volume.free(g.blocks);
      this.log.dropThrough(g.lsn);
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
    const run = this.#runCheckpoint(force).finally(() => {
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
    const started = performance.now();
    const frozen = this.#active;
    const lsnCovered = Math.min(this.stats.lsn.last, Math.min(...this.#inflight) - 1);
    this.#frozen = frozen;
    this.#active = new Map();
    this.#activeBytes = 0;
    const tx = this.volume.beginCp();
    let result: CheckpointResult;
    try {
      // The superblock will claim every record <= lsnCovered: they must be on disk first.
      await this.#lastDurable;
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
    const sb = await tx.commit({ ...previous, ...fields, volumeDigest });
    // The new tree is on disk: reads move to it, and the frozen layer is now in it.
    this.#catalog = catalog;
    this.#frozen = null;
    for (const key of frozen.keys()) this.#etags.delete(key);
    const durationMs = performance.now() - started;
    this.stats.cp.committed = sb.cp;
    this.stats.cp.lastDurationMs = durationMs;
    this.stats.cp.durationsMs.push(durationMs);
    if (this.stats.cp.durationsMs.length > 1024) this.stats.cp.durationsMs.shift();
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
    await this.#cpRunning?.catch(() => {});
    await this.log.close();
    this.volume.close();
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

/** The body's chunks; a body that breaks off (client gone) is a 400, not an internal error. */
async function* readBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
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

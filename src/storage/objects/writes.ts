/**
 * The write path of the object store: a body becomes 1 MiB log records (a
 * multi-record write is a transaction, applied only at its COMMIT, so no
 * reader or recovery ever sees half of it), each record is admitted by space
 * accounting, forwarded to the mirror as soon as it is written, and the write
 * is acknowledged once every record is durable here and there.
 *
 * @example
 * ```ts
 * declare const writes: ObjectWrites;
 * const body = ReadableStream.from([new TextEncoder().encode("hello")]);
 * const result = await writes.write("a", body, { replace: true, offset: 0, length: 5 });
 * ```
 *
 * @module
 */
import { BLOCK_SIZE, concatBytes } from "../../bytes/mod.ts";
import type { Clock } from "../../runtime/clock.ts";
import { errorMessage, isError, RefsyncError } from "../../errors/mod.ts";
import { Flag, framePayload, Op } from "../../protocol/log-frame/mod.ts";
import { rechunk } from "../../protocol/stream/rechunk.ts";
import type { Appended, AppendFields, NvLog } from "../log/mod.ts";
import type { CpLifecycle } from "./cp-lifecycle.ts";
import { EtagHasher } from "./etag.ts";
import { encodeKey } from "./key.ts";
import { MAX_META_BYTES } from "./record.ts";
import type { DirtyLayers } from "./layers.ts";
import type { Extent } from "./overlay.ts";
import type { ObjectReads } from "./reads.ts";
import type { SpaceAccounting } from "./space.ts";
import { assert } from "../../assert.ts";
import { assertOpen, type StoreState } from "./state.ts";
import {
  type Precondition,
  RECORD_PAYLOAD_BYTES,
  type StoreOptions,
  type WriteOptions,
  type WriteResult,
} from "./types.ts";

/** Records of one write whose durability may be pending at once. */
const PENDING_RECORDS = 8;

/** What the write path works on. */
export interface WritesContext {
  log: NvLog;
  layers: DirtyLayers;
  state: StoreState;
  space: SpaceAccounting;
  reads: ObjectReads;
  cps: CpLifecycle;
  options: StoreOptions;
  clock: Clock;
}

/** write and delete. */
export class ObjectWrites {
  readonly #ctx: WritesContext;
  /** Local durability of the last appended record: a CP covers only durable records. */
  #lastDurable: Promise<void> = Promise.resolve();

  constructor(ctx: WritesContext) {
    this.#ctx = ctx;
  }

  /** Resolves once the last appended record is durable here (never rejects). */
  get lastDurable(): Promise<void> {
    return this.#lastDurable;
  }

  /** See {@link ObjectStore.write}. */
  async write(
    key: string,
    body: ReadableStream<Uint8Array> | null,
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const { state, layers, space, reads, options, clock } = this.#ctx;
    assertOpen(state);
    const keyBytes = encodeKey(key);
    assert(!opts.meta || opts.replace, "metadata needs a whole PUT");
    const limit = options.maxObjectBytes;
    if (opts.offset + (opts.length ?? 0) > limit) {
      throw new RefsyncError("too_large", `the object would exceed --max-object-bytes (${limit})`);
    }
    opts.precondition?.(reads.current(key));
    await this.#waitForRoom();
    // Refused before any of the body is read when its announced length cannot fit.
    if (opts.length !== undefined) {
      await space.makeRoom(opts.length, key);
      space.claim(opts.length, key);
    }
    let created = false;
    /** Decides the write at its last record: nothing may run between this and the apply. */
    const settle = () => {
      const current = reads.current(key);
      opts.precondition?.(current);
      created = current === null;
    };
    // A whole PUT's ETag, from the block digests its frames hash anyway (./etag.ts).
    const etagHasher = opts.replace ? new EtagHasher() : null;
    // Each piece is read into the frame that will log it: the body is copied once.
    const pieces = rechunk(
      body,
      RECORD_PAYLOAD_BYTES,
      opts.length,
      (n) => framePayload(keyBytes.length, n),
    );
    let piece = await pieces.next();
    let offset = opts.offset;
    let txn = 0;
    const staged: Extent[] = [];
    let stagedBytes = 0;
    const pending: Promise<boolean>[] = [];
    let lastLsn = 0;
    /** The ETag of a whole PUT, once its last record is logged. */
    let etag: Uint8Array | null = null;
    /** Every record so far was held by an in-sync mirror. */
    let mirrored = true;
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
        await space.makeRoom(data.length, key);
        if (single) settle();
        // Every payload digest is derived from its block digests: one pass over its bytes.
        const flags = Flag.BLOCK_DIGESTS |
          (single ? Flag.COMMIT_NOW : 0) |
          (single && opts.replace ? Flag.REPLACE : 0);
        const mtime = clock.now();
        // Checked right before the append (no await between): concurrent writers cannot both
        // take the same room.
        space.claim(data.length, key);
        const { appended, done } = this.#append({
          op: Op.WRITE,
          flags,
          key,
          txn: txn === 0 ? "self" : txn,
          offset,
          mtime,
        }, data);
        pending.push(done);
        if (etagHasher) {
          etagHasher.blocks(appended.blockDigests);
          etagHasher.update(data.subarray(data.length - data.length % BLOCK_SIZE));
        }
        if (txn === 0 && !single) {
          txn = appended.lsn;
          layers.inflight.add(txn);
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
          etag = etagHasher?.digest() ?? null;
          layers.applyWrite(
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
          layers.stagedBytes += data.length;
        }
        if (pending.length >= PENDING_RECORDS) mirrored = await pending.shift()! && mirrored;
        if (last) break;
        piece = next;
      }
      const size = offset;
      if (txn !== 0) {
        etag = etagHasher?.digest() ?? null;
        const meta = opts.meta?.() ?? null;
        assert(
          meta === null || meta.length <= MAX_META_BYTES,
          `metadata of ${meta?.length} bytes (at most ${MAX_META_BYTES})`,
        );
        settle();
        const mtime = clock.now();
        const { appended, done } = this.#append({
          op: Op.COMMIT,
          flags: opts.replace ? Flag.REPLACE : 0,
          key,
          txn,
          offset: opts.replace ? size : 0,
          mtime,
        }, etag ? (meta ? concatBytes([etag, meta]) : etag) : new Uint8Array(0));
        layers.inflight.delete(txn);
        txn = 0;
        pending.push(done);
        lastLsn = appended.lsn;
        layers.stagedBytes -= stagedBytes;
        stagedBytes = 0;
        layers.applyWrite(key, keyBytes, opts.replace, size, staged, etag, meta, mtime, lastLsn);
      }
      // The size this write left, read now: a CP may freeze the active layer while we wait.
      const newSize = opts.replace ? size : (layers.active.get(key)?.size ?? size);
      for (const held of await Promise.all(pending)) mirrored &&= held;
      this.#assertDurable(lastLsn, mirrored);
      state.stats.lsn.acked = Math.max(state.stats.lsn.acked, lastLsn);
      this.#maybeCheckpoint();
      return {
        key,
        size: newSize,
        etag: etag ? etag.toHex() : null,
        lsn: lastLsn,
        created,
        mirrored,
      };
    } catch (e) {
      // An uncommitted transaction stays in the log but is never applied.
      if (txn !== 0) layers.inflight.delete(txn);
      layers.stagedBytes -= stagedBytes;
      await Promise.allSettled(pending);
      await pieces.return(undefined);
      throw e;
    }
  }

  /** See {@link ObjectStore.delete}. */
  async delete(
    key: string,
    opts: { precondition?: Precondition } = {},
  ): Promise<{ lsn: number; mirrored: boolean } | null> {
    const { state, layers, reads, clock } = this.#ctx;
    assertOpen(state);
    const keyBytes = encodeKey(key);
    const current = reads.current(key);
    if (current === null) return null;
    opts.precondition?.(current);
    // No waiting for room, no space claim: a DELETE adds no dirty bytes, its record is small
    // (the reserve holds it), and it is how a full disk is emptied.
    const mtime = clock.now();
    const { appended, done } = this.#append(
      { op: Op.DELETE, key, mtime },
      new Uint8Array(0),
    );
    layers.applyDelete(key, keyBytes, appended.lsn, mtime);
    const mirrored = await done;
    this.#assertDurable(appended.lsn, mirrored);
    state.stats.lsn.acked = Math.max(state.stats.lsn.acked, appended.lsn);
    return { lsn: appended.lsn, mirrored };
  }

  #append(
    fields: AppendFields,
    payload: Uint8Array,
  ): { appended: Appended; done: Promise<boolean> } {
    const { state, log, options } = this.#ctx;
    // Fenced: nothing more is logged, so nothing refused is ever applied.
    if (state.fenced !== null) throw new RefsyncError("fenced", state.fenced);
    const { records: written, durable } = log.write([{ fields, payload }]);
    this.#lastDurable = durable.catch(() => {});
    // Without a mirror nothing holds a copy: never "mirrored".
    const remote = options.replicate ? options.replicate(written) : Promise.resolve(false);
    const done = Promise.all([durable, remote]).then(([, mirrored]) => mirrored);
    done.catch(() => {}); // awaited by the writer; this only silences the early rejection
    state.stats.lsn.last = written[written.length - 1].lsn;
    return { appended: written[0], done };
  }

  /**
   * Paired with the acknowledgement: record `lsn` is durable here, and on the
   * mirror when the write is acknowledged as `mirrored`.
   */
  #assertDurable(lsn: number, mirrored: boolean): void {
    const { log, options } = this.#ctx;
    assert(
      lsn <= log.durableLsn,
      `acknowledging LSN ${lsn}; the log is durable to ${log.durableLsn}`,
    );
    if (!mirrored) return;
    const held = options.mirrorAckedLsn?.() ?? lsn;
    assert(lsn <= held, `acknowledging LSN ${lsn} as mirrored; the mirror confirmed ${held}`);
  }

  async #waitForRoom(): Promise<void> {
    const { layers, options, cps } = this.#ctx;
    // Back pressure: past twice the threshold, writers wait for a CP instead of growing memory.
    for (let i = 0; layers.activeBytes >= 2 * options.cpDirtyBytes && i < 1000; i++) {
      try {
        await cps.checkpoint();
      } catch (e) {
        const code = isError(e, "no_space") ? "no_space" : "unavailable";
        throw new RefsyncError(code, `write buffer full and CP failed: ${errorMessage(e)}`);
      }
    }
  }

  #maybeCheckpoint(): void {
    const { layers, options, cps } = this.#ctx;
    if (layers.activeBytes >= options.cpDirtyBytes && cps.running === null) {
      cps.checkpoint().catch(() => {/* the next trigger retries; stats show the failure */});
    }
  }
}

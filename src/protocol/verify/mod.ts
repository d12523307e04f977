/**
 * The online verify's wire formats: the digest stream a destination answers
 * `GET /v1/repl/verify?cp=N` with, and the body of `POST /v1/repl/repair`.
 *
 * Digest stream (little-endian), fixed-size records so a reader holds one at
 * a time:
 * ```
 * header   48  "RSVD", u16 version (1), u16 0, u64 cp, 32 volume digest of that CP
 * record   24  u32 block (>= 2), u32 flags (1: the block fails its own check here), 16 digest
 * trailer  24  u32 0, "RSVE", u64 record count, 8 zero
 * ```
 * Records come in strictly increasing block order (so two sides merge in
 * bounded memory); block 0 (a superblock slot, never listed) marks the
 * trailer. A stream without its trailer was cut: its end is an error, never a
 * short list.
 *
 * Repair body: records of `u32 block, 4096 bytes`, at most
 * {@link REPAIR_BATCH_BLOCKS} of them.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { RefsyncError } from "../../errors/mod.ts";
import { getU64, setU64 } from "../log-frame/u64.ts";
import { ByteReader } from "../stream/byte-reader.ts";

/** Bytes of a block digest: the first 16 bytes of the block's BLAKE3. */
export const DIGEST_BYTES = 16;
/** Bytes of the digest stream's header. */
export const DIGEST_HEADER_BYTES = 48;
/** Bytes of one digest record, and of the trailer. */
export const DIGEST_RECORD_BYTES = 24;
/** Bytes of one repair record. */
export const REPAIR_RECORD_BYTES = 4 + BLOCK_SIZE;
/** Most blocks in one repair request (1 MiB of bytes). */
export const REPAIR_BATCH_BLOCKS = 256;

const HEADER_MAGIC = 0x44565352; // "RSVD"
const TRAILER_MAGIC = 0x45565352; // "RSVE"
const VERSION = 1;
const DAMAGED = 1;

/** What a digest stream is about. */
export interface DigestHeader {
  cp: number;
  /** The volume digest of CP `cp` (32 bytes). */
  volumeDigest: Uint8Array;
}

/** One block's digest as a side lists it. */
export interface DigestRecord {
  block: number;
  /** 16 bytes. */
  digest: Uint8Array;
  /** The block fails its own pointer's check on the side that listed it. */
  damaged: boolean;
}

/** A digest stream being read: its header, then its records one at a time. */
export interface DigestReader {
  header: DigestHeader;
  records: AsyncGenerator<DigestRecord>;
  /** Stops reading (the rest is never pulled). */
  cancel(): Promise<void>;
}

/** What a destination answers a repair: the blocks it wrote, and the ones it refused with why. */
export interface RepairAnswer {
  repaired: number[];
  refused: Array<{ block: number; message: string }>;
}

/**
 * The header bytes of a digest stream.
 *
 * @example
 * ```ts
 * const bytes = encodeDigestHeader({ cp: 7, volumeDigest: new Uint8Array(32) });
 * bytes.length; // 48
 * ```
 */
export function encodeDigestHeader(h: DigestHeader): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(DIGEST_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, HEADER_MAGIC, true);
  view.setUint16(4, VERSION, true);
  setU64(view, 8, h.cp);
  out.set(h.volumeDigest.subarray(0, 32), 16);
  return out;
}

/**
 * Appends record `r` at `at` of `out` (24 bytes).
 *
 * @example
 * ```ts
 * const out = new Uint8Array(24);
 * encodeDigestRecord(out, 0, { block: 9, digest: new Uint8Array(16), damaged: false });
 * ```
 */
export function encodeDigestRecord(out: Uint8Array, at: number, r: DigestRecord): void {
  if (!(Number.isInteger(r.block) && r.block >= 2 && r.block <= 0xffffffff)) {
    throw new RangeError(`digest record: block ${r.block} is not a listable block`);
  }
  if (r.digest.length < DIGEST_BYTES) throw new RangeError("digest record: digest of 16 bytes");
  const view = new DataView(out.buffer, out.byteOffset + at, DIGEST_RECORD_BYTES);
  view.setUint32(0, r.block, true);
  view.setUint32(4, r.damaged ? DAMAGED : 0, true);
  out.set(r.digest.subarray(0, DIGEST_BYTES), at + 8);
}

/**
 * The trailer bytes of a stream of `count` records.
 *
 * @example
 * ```ts
 * encodeDigestTrailer(1234).length; // 24
 * ```
 */
export function encodeDigestTrailer(count: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(DIGEST_RECORD_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(4, TRAILER_MAGIC, true);
  setU64(view, 8, count);
  return out;
}

/**
 * A digest stream of `records` (pulled lazily, `batch` records per chunk);
 * `onEnd` runs once when it ends, fails or is cancelled (the lister's pin).
 *
 * @example
 * ```ts
 * const body = digestStream({ cp: 3, volumeDigest: new Uint8Array(32) }, [], () => {});
 * const { header } = await readDigestStream(body);
 * header.cp; // 3
 * ```
 */
export function digestStream(
  header: DigestHeader,
  records: Iterable<DigestRecord>,
  onEnd: () => void,
  batch = 512,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const it = records[Symbol.iterator]();
  let count = 0;
  let started = false;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encodeDigestHeader(header));
        return;
      }
      try {
        const out = new Uint8Array(batch * DIGEST_RECORD_BYTES);
        let n = 0;
        for (; n < batch; n++) {
          const next = it.next();
          if (next.done) break;
          encodeDigestRecord(out, n * DIGEST_RECORD_BYTES, next.value);
        }
        count += n;
        if (n > 0) controller.enqueue(out.subarray(0, n * DIGEST_RECORD_BYTES));
        if (n < batch) {
          controller.enqueue(encodeDigestTrailer(count));
          controller.close();
          end();
        }
      } catch (e) {
        end();
        controller.error(e);
      }
    },
    cancel() {
      end();
    },
  }, { highWaterMark: 0 });
}

function bad(why: string): RefsyncError {
  return new RefsyncError("bad_request", `digest stream: ${why}`);
}

/**
 * Reads a digest stream: its header, then its records one at a time (in
 * strictly increasing block order, counted against the trailer). Throws
 * `bad_request` on anything malformed, reordered, or cut before the trailer.
 *
 * @example
 * ```ts
 * declare const body: ReadableStream<Uint8Array>;
 * const { header, records } = await readDigestStream(body);
 * for await (const r of records) console.log(header.cp, r.block, r.damaged);
 * ```
 */
export async function readDigestStream(
  body: ReadableStream<Uint8Array>,
): Promise<
  { header: DigestHeader; records: AsyncGenerator<DigestRecord>; cancel(): Promise<void> }
> {
  const reader = new ByteReader(body);
  let head: Uint8Array | null;
  try {
    head = await reader.read(DIGEST_HEADER_BYTES);
  } catch (e) {
    await reader.cancel();
    throw bad(`cut inside its header (${e instanceof Error ? e.message : e})`);
  }
  const view = head && new DataView(head.buffer);
  if (head === null || view!.getUint32(0, true) !== HEADER_MAGIC) {
    await reader.cancel();
    throw bad("no digest stream header");
  }
  if (view!.getUint16(4, true) !== VERSION) {
    await reader.cancel();
    throw bad(`version ${view!.getUint16(4, true)}; this refsync reads version ${VERSION}`);
  }
  const cp = getU64(view!, 8);
  if (cp === undefined) {
    await reader.cancel();
    throw bad("a CP beyond 2^53");
  }
  const header = { cp, volumeDigest: head.slice(16, 48) };
  async function* records(): AsyncGenerator<DigestRecord> {
    let count = 0;
    let last = 1;
    try {
      for (;;) {
        let rec: Uint8Array | null;
        try {
          rec = await reader.read(DIGEST_RECORD_BYTES);
        } catch {
          rec = null;
        }
        if (rec === null) throw bad(`cut after ${count} records, before its trailer`);
        const v = new DataView(rec.buffer);
        const block = v.getUint32(0, true);
        if (block === 0) {
          if (v.getUint32(4, true) !== TRAILER_MAGIC) throw bad("a bad trailer");
          const announced = getU64(v, 8);
          if (announced !== count) {
            throw bad(`its trailer counts ${announced} records, ${count} came`);
          }
          if ((await reader.read(1)) !== null) throw bad("bytes after its trailer");
          return;
        }
        if (block <= last) throw bad(`block ${block} after block ${last}: not in block order`);
        const flags = v.getUint32(4, true);
        if ((flags & ~DAMAGED) !== 0) throw bad(`unknown flags ${flags} of block ${block}`);
        last = block;
        count++;
        yield { block, digest: rec.slice(8, 8 + DIGEST_BYTES), damaged: flags === DAMAGED };
      }
    } finally {
      await reader.cancel();
    }
  }
  return { header, records: records(), cancel: () => reader.cancel() };
}

/**
 * The body of a repair request.
 *
 * @example
 * ```ts
 * const body = encodeRepair([{ block: 9, bytes: new Uint8Array(4096) }]);
 * body.length; // 4100
 * ```
 */
export function encodeRepair(
  records: Array<{ block: number; bytes: Uint8Array }>,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(records.length * REPAIR_RECORD_BYTES);
  const view = new DataView(out.buffer);
  records.forEach((r, i) => {
    if (r.bytes.length !== BLOCK_SIZE) {
      throw new RangeError(`repair: block ${r.block} of ${r.bytes.length} bytes`);
    }
    view.setUint32(i * REPAIR_RECORD_BYTES, r.block, true);
    out.set(r.bytes, i * REPAIR_RECORD_BYTES + 4);
  });
  return out;
}

/**
 * The records of a repair request body; `bad_request` when it is not whole
 * records, `too_large` beyond {@link REPAIR_BATCH_BLOCKS}.
 *
 * @example
 * ```ts
 * const [r] = decodeRepair(encodeRepair([{ block: 9, bytes: new Uint8Array(4096) }]));
 * r.block; // 9
 * ```
 */
export function decodeRepair(body: Uint8Array): Array<{ block: number; bytes: Uint8Array }> {
  if (body.length % REPAIR_RECORD_BYTES !== 0) {
    throw new RefsyncError(
      "bad_request",
      `a repair body is records of ${REPAIR_RECORD_BYTES} bytes (u32 block, ${BLOCK_SIZE} bytes); got ${body.length} bytes`,
    );
  }
  const n = body.length / REPAIR_RECORD_BYTES;
  if (n > REPAIR_BATCH_BLOCKS) {
    throw new RefsyncError(
      "too_large",
      `${n} blocks in one repair; at most ${REPAIR_BATCH_BLOCKS}`,
    );
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const out: Array<{ block: number; bytes: Uint8Array }> = [];
  for (let i = 0; i < n; i++) {
    const at = i * REPAIR_RECORD_BYTES;
    out.push({
      block: view.getUint32(at, true),
      bytes: body.slice(at + 4, at + REPAIR_RECORD_BYTES),
    });
  }
  return out;
}

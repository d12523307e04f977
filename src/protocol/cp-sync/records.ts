/**
 * CP sync records: one streamed request per CP makes the destination's volume
 * an exact image of the source's. All-zero blocks are holes in the block maps,
 * so they are never written and cost nothing on the wire. Each record says how to build one written
 * block (or a run) from what the destination already holds; only what it
 * cannot find travels as bytes.
 *
 * Wire layout (little-endian), a stream of `u8 kind` + body:
 * ```
 * BEGIN   u64 cp, u64 pairGeneration, 16 volumeId, 32 previous volume digest
 * DATA    u32 block, 4096 bytes
 * LOG_REF u32 first block, u32 count, u64 lsn, u32 payload offset, 16 run check
 *         (blocks first.. come from consecutive 4 KiB of that log record's payload)
 * PATCH   u32 block, u32 base (0: zeros), 16 check, u16 n, n x (u16 at, u16 length-1, u64 lsn, u32 payload offset)
 * COPY    u32 block, u32 from (a block live in the last CP), 16 check
 * DIFF    u32 block, u32 base, 16 check, u16 n, n x (u16 at, u16 length-1, bytes)
 * FREE    u32 n, n x u32 block (released by this CP: free once it commits)
 * COMMIT  4096 superblock bytes
 * CATCH_UP u64 cp (target), u64 base cp, u64 pairGeneration, 16 volumeId,
 *         32 base volume digest, 32 target volume digest, u64 target lsnCovered,
 *         u64 resumeFrom (walk entries the destination already holds)
 * CHECK   u32 block, 16 check ("you already hold these bytes at this block")
 * ```
 * A catch-up stream (`POST /v1/repl/catch-up`) starts with CATCH_UP instead of
 * BEGIN, carries DATA, LOG_REF, COPY and CHECK records for the blocks of the
 * walk by birth CP from `resumeFrom` on (no FREE), and ends with COMMIT.
 * A check is the first 16 bytes of the BLAKE3 of the block (for a LOG_REF run:
 * of the concatenated 32-byte digests of its blocks). The full volume digest in
 * the superblock is verified at COMMIT, so a check only has to localise a
 * mismatch: that block is then requested as DATA.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { ByteReader } from "../stream/byte-reader.ts";

/** Bytes of a record check. */
export const CHECK_BYTES = 16;
/** Largest slice or range count in one PATCH or DIFF record. */
export const MAX_PIECES = 1024;
/** Largest block count in one FREE record. */
export const MAX_FREE = 4096;
/** Body bytes of a CATCH_UP record. */
const CATCH_UP_BYTES = 3 * 8 + 16 + 32 + 32 + 2 * 8;

/** Record kinds. */
export const Kind = {
  BEGIN: 1,
  DATA: 2,
  LOG_REF: 3,
  PATCH: 4,
  COPY: 5,
  DIFF: 6,
  FREE: 7,
  COMMIT: 8,
  CATCH_UP: 9,
  CHECK: 10,
} as const;

/** A slice of a log payload laid into a block. */
export interface PatchSlice {
  at: number;
  length: number;
  lsn: number;
  payloadOffset: number;
}

/** Changed bytes of a metadata block. */
export interface DiffRange {
  at: number;
  bytes: Uint8Array;
}

/** A decoded record. */
export type CpRecord =
  | {
    kind: "begin";
    cp: number;
    pairGeneration: number;
    volumeId: Uint8Array;
    previousDigest: Uint8Array;
  }
  | { kind: "data"; block: number; bytes: Uint8Array }
  | {
    kind: "logRef";
    block: number;
    count: number;
    lsn: number;
    payloadOffset: number;
    check: Uint8Array;
  }
  | { kind: "patch"; block: number; base: number; check: Uint8Array; slices: PatchSlice[] }
  | { kind: "copy"; block: number; from: number; check: Uint8Array }
  | { kind: "diff"; block: number; base: number; check: Uint8Array; ranges: DiffRange[] }
  | { kind: "free"; blocks: number[] }
  | { kind: "commit"; superblock: Uint8Array }
  | {
    kind: "catchUp";
    cp: number;
    baseCp: number;
    pairGeneration: number;
    volumeId: Uint8Array;
    baseDigest: Uint8Array;
    targetDigest: Uint8Array;
    lsnCovered: number;
    resumeFrom: number;
  }
  | { kind: "check"; block: number; check: Uint8Array };

/** The check of one block's content. */
export function blockCheck(digest: Uint8Array): Uint8Array {
  return digest.subarray(0, CHECK_BYTES);
}

/** The check of a run of blocks, from their 32-byte digests concatenated. */
export function runCheck(digests: Uint8Array): Uint8Array {
  return blake3(digests).subarray(0, CHECK_BYTES);
}

/**
 * Encodes one record.
 *
 * @example
 * ```ts
 * const bytes = encodeRecord({ kind: "free", blocks: [9] });
 * ```
 */
export function encodeRecord(r: CpRecord): Uint8Array {
  let out: Uint8Array;
  let v: DataView;
  const alloc = (kind: number, size: number) => {
    out = new Uint8Array(1 + size);
    out[0] = kind;
    v = new DataView(out.buffer);
  };
  switch (r.kind) {
    case "begin":
      alloc(Kind.BEGIN, 8 + 8 + 16 + 32);
      v!.setBigUint64(1, BigInt(r.cp), true);
      v!.setBigUint64(9, BigInt(r.pairGeneration), true);
      out!.set(r.volumeId, 17);
      out!.set(r.previousDigest, 33);
      break;
    case "data":
      alloc(Kind.DATA, 4 + BLOCK_SIZE);
      v!.setUint32(1, r.block, true);
      out!.set(r.bytes, 5);
      break;
    case "logRef":
      alloc(Kind.LOG_REF, 4 + 4 + 8 + 4 + CHECK_BYTES);
      v!.setUint32(1, r.block, true);
      v!.setUint32(5, r.count, true);
      v!.setBigUint64(9, BigInt(r.lsn), true);
      v!.setUint32(17, r.payloadOffset, true);
      out!.set(r.check, 21);
      break;
    case "patch":
      alloc(Kind.PATCH, 4 + 4 + CHECK_BYTES + 2 + r.slices.length * 16);
      v!.setUint32(1, r.block, true);
      v!.setUint32(5, r.base, true);
      out!.set(r.check, 9);
      v!.setUint16(25, r.slices.length, true);
      r.slices.forEach((s, i) => {
        const o = 27 + i * 16;
        v.setUint16(o, s.at, true);
        v.setUint16(o + 2, s.length - 1, true);
        v.setBigUint64(o + 4, BigInt(s.lsn), true);
        v.setUint32(o + 12, s.payloadOffset, true);
      });
      break;
    case "copy":
      alloc(Kind.COPY, 4 + 4 + CHECK_BYTES);
      v!.setUint32(1, r.block, true);
      v!.setUint32(5, r.from, true);
      out!.set(r.check, 9);
      break;
    case "diff": {
      const body = r.ranges.reduce((n, x) => n + 4 + x.bytes.length, 0);
      alloc(Kind.DIFF, 4 + 4 + CHECK_BYTES + 2 + body);
      v!.setUint32(1, r.block, true);
      v!.setUint32(5, r.base, true);
      out!.set(r.check, 9);
      v!.setUint16(25, r.ranges.length, true);
      let o = 27;
      for (const x of r.ranges) {
        v!.setUint16(o, x.at, true);
        v!.setUint16(o + 2, x.bytes.length - 1, true);
        out!.set(x.bytes, o + 4);
        o += 4 + x.bytes.length;
      }
      break;
    }
    case "free":
      alloc(Kind.FREE, 4 + r.blocks.length * 4);
      v!.setUint32(1, r.blocks.length, true);
      r.blocks.forEach((b, i) => v.setUint32(5 + i * 4, b, true));
      break;
    case "commit":
      alloc(Kind.COMMIT, BLOCK_SIZE);
      out!.set(r.superblock, 1);
      break;
    case "catchUp":
      alloc(Kind.CATCH_UP, CATCH_UP_BYTES);
      v!.setBigUint64(1, BigInt(r.cp), true);
      v!.setBigUint64(9, BigInt(r.baseCp), true);
      v!.setBigUint64(17, BigInt(r.pairGeneration), true);
      out!.set(r.volumeId, 25);
      out!.set(r.baseDigest, 41);
      out!.set(r.targetDigest, 73);
      v!.setBigUint64(105, BigInt(r.lsnCovered), true);
      v!.setBigUint64(113, BigInt(r.resumeFrom), true);
      break;
    case "check":
      alloc(Kind.CHECK, 4 + CHECK_BYTES);
      v!.setUint32(1, r.block, true);
      out!.set(r.check, 5);
      break;
  }
  return out!;
}

/** A malformed CP sync stream. */
export class CpSyncFormatError extends Error {}

function u64(b: Uint8Array, at: number): number {
  const n = new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new CpSyncFormatError("u64 field out of range");
  return Number(n);
}

/**
 * Decodes records from a stream, one at a time, never holding more than one
 * record (at most a few KiB) in memory.
 *
 * @example
 * ```ts
 * declare const request: Request;
 * declare function apply(record: CpRecord): void;
 * let received = 0;
 * for await (const record of readRecords(request.body!, (n) => received += n)) apply(record);
 * ```
 */
export async function* readRecords(
  stream: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void = () => {},
  signal?: AbortSignal,
): AsyncGenerator<CpRecord> {
  const r = new ByteReader(stream);
  // Aborting cancels the stream: a pending read ends and the caller sees a stream cut short.
  const stop = () => void r.cancel();
  signal?.addEventListener("abort", stop);
  try {
    while (true) {
      const before = r.consumed;
      const kind = await r.read(1);
      if (kind === null) return;
      const record = await readBody(r, kind[0]);
      onBytes(r.consumed - before);
      yield record;
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    await r.cancel();
  }
}

async function readBody(r: ByteReader, kind: number): Promise<CpRecord> {
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (kind) {
    case Kind.BEGIN: {
      const b = await r.readExact(64);
      return {
        kind: "begin",
        cp: u64(b, 0),
        pairGeneration: u64(b, 8),
        volumeId: b.slice(16, 32),
        previousDigest: b.slice(32, 64),
      };
    }
    case Kind.DATA: {
      const b = await r.readExact(4 + BLOCK_SIZE);
      return { kind: "data", block: dv(b).getUint32(0, true), bytes: b.subarray(4) };
    }
    case Kind.LOG_REF: {
      const b = await r.readExact(20 + CHECK_BYTES);
      const v = dv(b);
      const count = v.getUint32(4, true);
      if (count === 0 || count > 1 << 20) throw new CpSyncFormatError(`LOG_REF count ${count}`);
      return {
        kind: "logRef",
        block: v.getUint32(0, true),
        count,
        lsn: u64(b, 8),
        payloadOffset: v.getUint32(16, true),
        check: b.slice(20),
      };
    }
    case Kind.PATCH:
    case Kind.DIFF: {
      const b = await r.readExact(8 + CHECK_BYTES + 2);
      const v = dv(b);
      const n = v.getUint16(8 + CHECK_BYTES, true);
      if (n > MAX_PIECES) throw new CpSyncFormatError(`${n} pieces in one record`);
      const block = v.getUint32(0, true);
      const base = v.getUint32(4, true);
      const check = b.slice(8, 8 + CHECK_BYTES);
      if (kind === Kind.PATCH) {
        const s = await r.readExact(n * 16);
        const sv = dv(s);
        const slices: PatchSlice[] = [];
        for (let i = 0; i < n; i++) {
          const at = sv.getUint16(i * 16, true);
          const length = sv.getUint16(i * 16 + 2, true) + 1;
          if (at + length > BLOCK_SIZE) {
            throw new CpSyncFormatError(`PATCH slice past the block end`);
          }
          slices.push({
            at,
            length,
            lsn: u64(s, i * 16 + 4),
            payloadOffset: sv.getUint32(i * 16 + 12, true),
          });
        }
        return { kind: "patch", block, base, check, slices };
      }
      const ranges: DiffRange[] = [];
      for (let i = 0; i < n; i++) {
        const h = dv(await r.readExact(4));
        const at = h.getUint16(0, true);
        const length = h.getUint16(2, true) + 1;
        if (at + length > BLOCK_SIZE) throw new CpSyncFormatError(`DIFF range past the block end`);
        ranges.push({ at, bytes: await r.readExact(length) });
      }
      return { kind: "diff", block, base, check, ranges };
    }
    case Kind.COPY: {
      const b = await r.readExact(8 + CHECK_BYTES);
      const v = dv(b);
      return {
        kind: "copy",
        block: v.getUint32(0, true),
        from: v.getUint32(4, true),
        check: b.slice(8),
      };
    }
    case Kind.FREE: {
      const n = dv(await r.readExact(4)).getUint32(0, true);
      if (n > MAX_FREE) throw new CpSyncFormatError(`${n} blocks in one FREE record`);
      const b = dv(await r.readExact(n * 4));
      const blocks: number[] = [];
      for (let i = 0; i < n; i++) blocks.push(b.getUint32(i * 4, true));
      return { kind: "free", blocks };
    }
    case Kind.COMMIT:
      return { kind: "commit", superblock: await r.readExact(BLOCK_SIZE) };
    case Kind.CATCH_UP: {
      const b = await r.readExact(CATCH_UP_BYTES);
      return {
        kind: "catchUp",
        cp: u64(b, 0),
        baseCp: u64(b, 8),
        pairGeneration: u64(b, 16),
        volumeId: b.slice(24, 40),
        baseDigest: b.slice(40, 72),
        targetDigest: b.slice(72, 104),
        lsnCovered: u64(b, 104),
        resumeFrom: u64(b, 112),
      };
    }
    case Kind.CHECK: {
      const b = await r.readExact(4 + CHECK_BYTES);
      return { kind: "check", block: dv(b).getUint32(0, true), check: b.slice(4) };
    }
    default:
      throw new CpSyncFormatError(`unknown CP sync record kind ${kind}`);
  }
}

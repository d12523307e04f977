/**
 * Reference frames: a log frame on the wire whose payload is a list of pieces
 * the destination already holds (docs/internals.md, section 2). Wire only: the
 * destination rebuilds the payload, checks it against the header's
 * `payloadDigest`, and appends the whole frame, so its log is byte-identical
 * to one fed whole frames.
 *
 * ```
 * off size field
 * 0   4   magic 0x524C5352 ("RSLR" as little-endian bytes)
 * 4   4   wireLength (all of this record; below the whole frame's length)
 * 8   4   pieceCount (1..1024)
 * 12      the frame's 96-byte header and key, unchanged (its checksum holds)
 * then pieceCount pieces, each a tag byte and:
 *   0 BYTES  u32 length, the bytes
 *   1 LOG    u64 lsn, u32 payloadOffset, u32 length: bytes of a record's payload
 *   2 BLOCK  u64 block, 16-byte check: a 4 KiB block live in the committed CP
 *   3 PREFIX u64 block, u16 length (1..4095), 16-byte check of the whole block:
 *            the first bytes of such a block (a small payload or a tail)
 * ```
 * The pieces' lengths add up to the header's payloadLength. PREFIX is format
 * {@link REF_FORMAT} 2: a source sends it only to a destination whose
 * handshake says it reads that format (`refFormat`).
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { HEADER_SIZE, MAX_FRAME_LENGTH, Off } from "./constants.ts";
import { decodeHeader } from "./decode.ts";
import { frameError } from "./error.ts";
import type { FrameHeader } from "./types.ts";
import { getU64, setU64 } from "./u64.ts";

/** The magic number of a reference frame; stored little-endian it reads "RSLR". */
export const REF_MAGIC = 0x524c5352;
/** Bytes before the frame's header: magic, wireLength, pieceCount. */
export const REF_PREFIX = 12;
/** Most pieces in one reference frame (a 1 MiB payload has 256 blocks). */
export const MAX_REF_PIECES = 1024;
/** Bytes of a BLOCK or PREFIX piece's check: the first 16 bytes of the block's BLAKE3. */
export const REF_CHECK_BYTES = 16;
/**
 * The reference frame format this code reads and writes: 1 has BYTES, LOG
 * and BLOCK pieces; 2 adds PREFIX.
 */
export const REF_FORMAT = 2;

/** One piece of a payload. */
export type Piece =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "log"; lsn: number; payloadOffset: number; length: number }
  | { kind: "block"; block: number; check: Uint8Array }
  | { kind: "prefix"; block: number; length: number; check: Uint8Array };

/** A decoded reference frame: the verified header, its bytes, and the pieces. */
export interface RefFrame {
  header: FrameHeader;
  /** The frame's header and key, as they open the whole frame. */
  head: Uint8Array;
  pieces: Piece[];
  /** Bytes of the reference frame on the wire. */
  wireLength: number;
}

const TAG = { bytes: 0, log: 1, block: 2, prefix: 3 } as const;

/** Bytes a piece takes on the wire. */
export function pieceWireSize(p: Piece): number {
  switch (p.kind) {
    case "bytes":
      return 5 + p.bytes.length;
    case "log":
      return 17;
    case "block":
      return 9 + REF_CHECK_BYTES;
    case "prefix":
      return 11 + REF_CHECK_BYTES;
  }
}

/** Payload bytes a piece stands for. */
export function pieceLength(p: Piece): number {
  return p.kind === "bytes" ? p.bytes.length : p.kind === "block" ? BLOCK_SIZE : p.length;
}

/**
 * Encodes the reference frame of the whole frame `frame` (header and key are
 * copied from it) with `pieces` for its payload.
 *
 * @throws FrameError when the pieces do not add up to the payload, or there are too many.
 *
 * @example
 * ```ts
 * import { encodeFrame, Flag, Op } from "./mod.ts";
 * const payload = new Uint8Array(4096 + 10);
 * const { bytes } = encodeFrame(
 *   { lsn: 9, op: Op.WRITE, flags: Flag.COMMIT_NOW | Flag.REPLACE, key: "k", txn: 9, offset: 0, mtime: 0 },
 *   payload,
 * );
 * const ref = encodeRefFrame(bytes, [
 *   { kind: "log", lsn: 3, payloadOffset: 0, length: 4096 },
 *   { kind: "bytes", bytes: payload.subarray(4096) },
 * ]);
 * ```
 */
export function encodeRefFrame(frame: Uint8Array, pieces: Piece[]): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const lsn = getU64(view, Off.lsn);
  const headLength = HEADER_SIZE + view.getUint16(Off.keyLength, true);
  const payloadLength = view.getUint32(Off.payloadLength, true);
  if (pieces.length < 1 || pieces.length > MAX_REF_PIECES) {
    throw frameError(
      lsn,
      `a reference frame has 1..${MAX_REF_PIECES} pieces, not ${pieces.length}`,
    );
  }
  let size = REF_PREFIX + headLength;
  let total = 0;
  for (const p of pieces) {
    size += pieceWireSize(p);
    total += pieceLength(p);
  }
  if (total !== payloadLength) {
    throw frameError(lsn, `pieces of ${total} bytes for a payload of ${payloadLength}`);
  }
  const out = new Uint8Array(size);
  const w = new DataView(out.buffer);
  w.setUint32(0, REF_MAGIC, true);
  w.setUint32(4, size, true);
  w.setUint32(8, pieces.length, true);
  out.set(frame.subarray(0, headLength), REF_PREFIX);
  let at = REF_PREFIX + headLength;
  for (const p of pieces) {
    out[at] = TAG[p.kind];
    if (p.kind === "bytes") {
      w.setUint32(at + 1, p.bytes.length, true);
      out.set(p.bytes, at + 5);
    } else if (p.kind === "log") {
      setU64(w, at + 1, p.lsn);
      w.setUint32(at + 9, p.payloadOffset, true);
      w.setUint32(at + 13, p.length, true);
    } else if (p.kind === "block") {
      setU64(w, at + 1, p.block);
      out.set(p.check.subarray(0, REF_CHECK_BYTES), at + 9);
    } else {
      if (p.length < 1 || p.length >= BLOCK_SIZE) {
        throw frameError(lsn, `a PREFIX piece has 1..${BLOCK_SIZE - 1} bytes, not ${p.length}`);
      }
      setU64(w, at + 1, p.block);
      w.setUint16(at + 9, p.length, true);
      out.set(p.check.subarray(0, REF_CHECK_BYTES), at + 11);
    }
    at += pieceWireSize(p);
  }
  return out;
}

/**
 * The wire length of the reference frame whose first bytes are `bytes` (at
 * least 8), checked against `maxLength`.
 *
 * @throws FrameError on a bad magic or length.
 */
export function checkRefPrefix(bytes: Uint8Array, maxLength = MAX_FRAME_LENGTH): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== REF_MAGIC) throw frameError(undefined, "not a reference frame");
  const length = view.getUint32(4, true);
  if (length < REF_PREFIX + HEADER_SIZE + 1 || length > Math.min(maxLength, MAX_FRAME_LENGTH)) {
    throw frameError(undefined, `reference frame length ${length} out of bounds`);
  }
  return length;
}

/**
 * Decodes one whole reference frame: header checksum verified, every piece
 * bounded, lengths adding up to the payload. What the pieces name is not
 * resolved here (that needs the destination's storage).
 *
 * @throws FrameError on any defect.
 *
 * @example
 * ```ts
 * declare const bytes: Uint8Array;
 * const { header, pieces } = decodeRefFrame(bytes);
 * ```
 */
export function decodeRefFrame(bytes: Uint8Array): RefFrame {
  const length = checkRefPrefix(bytes);
  if (bytes.length !== length) {
    throw frameError(undefined, `reference frame of ${bytes.length} bytes, length says ${length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(8, true);
  const header = decodeHeader(bytes.subarray(REF_PREFIX));
  const lsn = header.lsn;
  if (count < 1 || count > MAX_REF_PIECES) {
    throw frameError(lsn, `a reference frame has 1..${MAX_REF_PIECES} pieces, not ${count}`);
  }
  const headEnd = REF_PREFIX + HEADER_SIZE + header.keyLength;
  const pieces: Piece[] = [];
  let at = headEnd;
  let total = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw frameError(lsn, "reference frame: a piece is truncated");
  };
  for (let i = 0; i < count; i++) {
    need(1);
    const tag = bytes[at];
    let piece: Piece;
    if (tag === TAG.bytes) {
      need(5);
      const n = view.getUint32(at + 1, true);
      need(5 + n);
      piece = { kind: "bytes", bytes: bytes.subarray(at + 5, at + 5 + n) };
    } else if (tag === TAG.log) {
      need(17);
      const ref = getU64(view, at + 1);
      if (ref === undefined) throw frameError(lsn, "reference frame: LSN exceeds 2^53 - 1");
      piece = {
        kind: "log",
        lsn: ref,
        payloadOffset: view.getUint32(at + 9, true),
        length: view.getUint32(at + 13, true),
      };
    } else if (tag === TAG.block) {
      need(9 + REF_CHECK_BYTES);
      const block = getU64(view, at + 1);
      if (block === undefined) throw frameError(lsn, "reference frame: block exceeds 2^53 - 1");
      piece = { kind: "block", block, check: bytes.subarray(at + 9, at + 9 + REF_CHECK_BYTES) };
    } else if (tag === TAG.prefix) {
      need(11 + REF_CHECK_BYTES);
      const block = getU64(view, at + 1);
      if (block === undefined) throw frameError(lsn, "reference frame: block exceeds 2^53 - 1");
      const n = view.getUint16(at + 9, true);
      if (n >= BLOCK_SIZE) throw frameError(lsn, `reference frame: a PREFIX of ${n} bytes`);
      const check = bytes.subarray(at + 11, at + 11 + REF_CHECK_BYTES);
      piece = { kind: "prefix", block, length: n, check };
    } else throw frameError(lsn, `reference frame: unknown piece tag ${tag}`);
    const n = pieceLength(piece);
    if (n === 0) throw frameError(lsn, "reference frame: an empty piece");
    total += n;
    if (total > header.payloadLength) break;
    at += pieceWireSize(piece);
    pieces.push(piece);
  }
  if (total !== header.payloadLength) {
    throw frameError(lsn, `pieces of ${total}+ bytes for a payload of ${header.payloadLength}`);
  }
  if (at !== bytes.length) throw frameError(lsn, "reference frame: trailing bytes");
  return { header, head: bytes.subarray(REF_PREFIX, headEnd), pieces, wireLength: length };
}

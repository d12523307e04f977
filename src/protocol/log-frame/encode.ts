/**
 * Frame encoder.
 *
 * @module
 */
import { FRAME_MAGIC, HEADER_SIZE, Off } from "./constants.ts";
import { frameError } from "./error.ts";
import { hashPayload, headerChecksum, type PayloadHash } from "./hash.ts";
import type { FrameFields, FrameHeader } from "./types.ts";
import { fieldProblem, keyProblem } from "./validate.ts";
import { setU64 } from "./u64.ts";

const utf8 = new TextEncoder();

/** Buffers made by {@link framePayload} and not yet encoded. */
const unencoded = new WeakSet<ArrayBufferLike>();

/**
 * A payload buffer of `length` bytes placed where the payload of a frame with
 * a `keyLength`-byte key goes, in a buffer of exactly that frame's size:
 * {@link encodeFrame} given it (filled, whole) writes the header and key around
 * it instead of copying the payload into a new buffer.
 *
 * @example
 * ```ts
 * import { Flag, Op } from "./constants.ts";
 * const payload = framePayload(1, 5);
 * payload.set(new TextEncoder().encode("hello"));
 * const { bytes } = encodeFrame(
 *   { lsn: 1, op: Op.WRITE, flags: Flag.COMMIT_NOW, key: "k", txn: 1, offset: 0, mtime: 0 },
 *   payload,
 * );
 * bytes.buffer === payload.buffer; // true: no copy
 * ```
 */
export function framePayload(keyLength: number, length: number): Uint8Array {
  const buffer = new ArrayBuffer(HEADER_SIZE + keyLength + length);
  unencoded.add(buffer);
  return new Uint8Array(buffer, HEADER_SIZE + keyLength, length);
}

/** The result of {@link encodeFrame}. */
export interface EncodedFrame {
  /** The whole frame: header, key, payload. */
  bytes: Uint8Array;
  /** The header as the decoder will see it. */
  header: FrameHeader;
  /** Standalone BLAKE3 digests of the payload's full 4 KiB blocks (32 B each). */
  blockDigests: Uint8Array;
}

/**
 * Encodes one frame. The payload is hashed once; the 4 KiB block digests fall
 * out of that pass for the block index. A payload from {@link framePayload} is
 * not copied: the frame is built around it.
 *
 * `hashed` may carry a `hashPayload(payload, fields.flags)` result computed
 * earlier (e.g. before the LSN was known) so the payload is not hashed twice.
 *
 * @throws FrameError when a field breaks a frame rule (key too long, bad flags…).
 *
 * @example
 * ```ts
 * import { Flag, Op } from "./constants.ts";
 * const { bytes, blockDigests } = encodeFrame(
 *   { lsn: 1, op: Op.WRITE, flags: Flag.COMMIT_NOW | Flag.REPLACE, key: "a/b", txn: 1, offset: 0, mtime: Date.now() },
 *   new TextEncoder().encode("hello"),
 * );
 * ```
 */
export function encodeFrame(
  fields: FrameFields,
  payload: Uint8Array,
  hashed?: PayloadHash,
): EncodedFrame {
  if (typeof fields.key !== "string" || !fields.key.isWellFormed()) {
    throw frameError(fields.lsn, "key is not a well-formed string");
  }
  const key = utf8.encode(fields.key);
  const problem = fieldProblem(fields, key.length, payload.length) ?? keyProblem(fields.key);
  if (problem) throw frameError(fields.lsn, problem);
  const { digest, blockDigests } = hashed ?? hashPayload(payload, fields.flags);

  const frameLength = HEADER_SIZE + key.length + payload.length;
  const { buffer } = payload;
  // In place only once: a frame handed out is never rewritten.
  const inPlace = unencoded.delete(buffer) && payload.byteOffset === HEADER_SIZE + key.length &&
    buffer.byteLength === frameLength;
  const bytes = inPlace ? new Uint8Array(buffer) : new Uint8Array(frameLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(Off.magic, FRAME_MAGIC, true);
  view.setUint32(Off.frameLength, frameLength, true);
  setU64(view, Off.lsn, fields.lsn);
  bytes[Off.op] = fields.op;
  bytes[Off.flags] = fields.flags;
  view.setUint16(Off.keyLength, key.length, true);
  view.setUint32(Off.payloadLength, payload.length, true);
  setU64(view, Off.txn, fields.txn);
  setU64(view, Off.offset, fields.offset);
  setU64(view, Off.mtime, fields.mtime);
  bytes.set(digest, Off.payloadDigest);
  bytes.set(headerChecksum(bytes, key), Off.headerChecksum);
  bytes.set(key, HEADER_SIZE);
  if (!inPlace) bytes.set(payload, HEADER_SIZE + key.length);

  const header: FrameHeader = {
    lsn: fields.lsn,
    op: fields.op,
    flags: fields.flags,
    key: fields.key,
    txn: fields.txn,
    offset: fields.offset,
    mtime: fields.mtime,
    frameLength,
    keyLength: key.length,
    payloadLength: payload.length,
    payloadDigest: bytes.subarray(Off.payloadDigest, Off.payloadDigest + digest.length),
  };
  return { bytes, header, blockDigests };
}

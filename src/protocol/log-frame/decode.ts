/**
 * Frame decoder and verifier. Every check happens before any length read from
 * the input is trusted, so a corrupt length can never drive an allocation or a
 * read beyond {@link MAX_FRAME_LENGTH}.
 *
 * @module
 */
import {
  DIGEST_LENGTH,
  FRAME_MAGIC,
  HEADER_CHECKSUM_LENGTH,
  HEADER_SIZE,
  MAX_FRAME_LENGTH,
  MAX_KEY_LENGTH,
  MAX_PAYLOAD_LENGTH,
  Off,
  type Op,
} from "./constants.ts";
import { frameError } from "./error.ts";
import { equalBytes } from "../../bytes/mod.ts";
import { alignedBlockDigests, headerChecksum, verifyingDigest } from "./hash.ts";
import type { Frame, FrameHeader } from "./types.ts";
import { getU64 } from "./u64.ts";
import { fieldProblem, keyProblem } from "./validate.ts";

/** Bytes needed by {@link checkPrefix}: magic, lengths and LSN. */
export const PREFIX_SIZE = 24;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * True when `frame` came out of {@link decodeFrame} or a {@link FrameParser}, so
 * its checksums were verified and need not be hashed again (the NVLOG skips
 * re-hashing frames handed over by the reader).
 */
export function isVerifiedFrame(frame: Frame): boolean {
  return frame instanceof DecodedFrame;
}

/**
 * The block digests verifying `frame` already computed (a BLOCK_DIGESTS frame
 * from {@link decodeFrame}, or one whose digests were asked for), else null:
 * what a caller may keep without hashing the payload again.
 *
 * @example
 * ```ts
 * import type { Frame } from "./types.ts";
 * declare const frame: Frame;
 * const digests = hashedBlockDigests(frame); // null: hash them only if needed
 * ```
 */
export function hashedBlockDigests(frame: Frame): Uint8Array | null {
  return frame instanceof DecodedFrame ? frame.hashedBlockDigests : null;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The LSN field when enough bytes are present and it is a safe integer (for messages). */
function lsnHint(bytes: Uint8Array): number | undefined {
  return bytes.length >= Off.lsn + 8 ? getU64(viewOf(bytes), Off.lsn) : undefined;
}

/**
 * Validates the first {@link PREFIX_SIZE} bytes of a frame (magic, key and
 * payload lengths, frame length) and returns the frame length. A streaming
 * reader calls it before buffering the rest, which bounds its memory.
 *
 * @param maxFrameLength a tighter bound than {@link MAX_FRAME_LENGTH}, if wanted.
 * @throws FrameError on bad magic or lengths, or fewer than 24 bytes.
 *
 * @example
 * ```ts
 * declare const firstBytes: Uint8Array;
 * const length = checkPrefix(firstBytes); // then wait for `length` bytes
 * ```
 */
export function checkPrefix(bytes: Uint8Array, maxFrameLength = MAX_FRAME_LENGTH): number {
  if (bytes.length < PREFIX_SIZE) {
    throw frameError(lsnHint(bytes), `truncated: ${bytes.length} of ${PREFIX_SIZE} prefix bytes`);
  }
  const view = viewOf(bytes);
  const magic = view.getUint32(Off.magic, true);
  if (magic !== FRAME_MAGIC) {
    throw frameError(
      undefined,
      `bad magic 0x${magic.toString(16).padStart(8, "0")} (expected 0x${
        FRAME_MAGIC.toString(16)
      } "RSLG")`,
    );
  }
  const lsn = lsnHint(bytes);
  const frameLength = view.getUint32(Off.frameLength, true);
  const keyLength = view.getUint16(Off.keyLength, true);
  const payloadLength = view.getUint32(Off.payloadLength, true);
  const limit = Math.min(maxFrameLength, MAX_FRAME_LENGTH);
  if (frameLength > limit) {
    throw frameError(lsn, `frame length ${frameLength} exceeds the maximum ${limit}`);
  }
  if (keyLength < 1 || keyLength > MAX_KEY_LENGTH) {
    throw frameError(lsn, `key length ${keyLength} outside 1..${MAX_KEY_LENGTH}`);
  }
  if (payloadLength > MAX_PAYLOAD_LENGTH) {
    throw frameError(
      lsn,
      `payload length ${payloadLength} exceeds the maximum ${MAX_PAYLOAD_LENGTH}`,
    );
  }
  if (frameLength !== HEADER_SIZE + keyLength + payloadLength) {
    throw frameError(
      lsn,
      `frame length ${frameLength} != ${HEADER_SIZE} + key ${keyLength} + payload ${payloadLength}`,
    );
  }
  return frameLength;
}

/**
 * Decodes and verifies a frame header. `bytes` must start with the frame and
 * hold at least its header and key (the payload may be absent).
 *
 * Checks magic, lengths, then the header checksum (over bytes 0..79 and the
 * key), then every field rule.
 *
 * @throws FrameError with a precise message, e.g. "frame at LSN 17: header checksum mismatch".
 *
 * @example
 * ```ts
 * declare const frameBytes: Uint8Array;
 * const h = decodeHeader(frameBytes);
 * console.log(h.lsn, h.key, h.payloadLength);
 * ```
 */
export function decodeHeader(bytes: Uint8Array): FrameHeader {
  if (bytes.length < HEADER_SIZE) {
    throw frameError(lsnHint(bytes), `truncated: ${bytes.length} of ${HEADER_SIZE} header bytes`);
  }
  const frameLength = checkPrefix(bytes);
  const view = viewOf(bytes);
  const keyLength = view.getUint16(Off.keyLength, true);
  const payloadLength = view.getUint32(Off.payloadLength, true);
  const lsnField = getU64(view, Off.lsn);
  if (bytes.length < HEADER_SIZE + keyLength) {
    throw frameError(
      lsnField,
      `truncated: ${bytes.length} of ${HEADER_SIZE + keyLength} header and key bytes`,
    );
  }
  const keyBytes = bytes.subarray(HEADER_SIZE, HEADER_SIZE + keyLength);
  const stored = bytes.subarray(Off.headerChecksum, Off.headerChecksum + HEADER_CHECKSUM_LENGTH);
  if (!equalBytes(headerChecksum(bytes, keyBytes), stored)) {
    throw frameError(lsnField, "header checksum mismatch");
  }
  // Past the checksum the header is what the writer wrote; what remains are rules.
  const txn = getU64(view, Off.txn);
  const offset = getU64(view, Off.offset);
  const mtime = getU64(view, Off.mtime);
  if (lsnField === undefined || txn === undefined || offset === undefined || mtime === undefined) {
    throw frameError(lsnField, "a u64 field exceeds 2^53 - 1");
  }
  let key: string;
  try {
    key = utf8.decode(keyBytes);
  } catch {
    throw frameError(lsnField, "key is not valid UTF-8");
  }
  const header: FrameHeader = {
    lsn: lsnField,
    op: bytes[Off.op] as Op,
    flags: bytes[Off.flags],
    key,
    txn,
    offset,
    mtime,
    frameLength,
    keyLength,
    payloadLength,
    payloadDigest: bytes.slice(Off.payloadDigest, Off.payloadDigest + DIGEST_LENGTH),
  };
  const problem = fieldProblem(header, keyLength, payloadLength) ?? keyProblem(key);
  if (problem) throw frameError(lsnField, problem);
  return header;
}

/**
 * Verifies a payload against its header's digest, in one BLAKE3 pass. Returns
 * the payload's block digests when that pass gave them (a BLOCK_DIGESTS frame),
 * else null: a decoded frame then derives them only if they are asked for.
 *
 * @throws FrameError "frame at LSN n: payload digest mismatch" (or a length mismatch).
 *
 * @example
 * ```ts
 * import type { FrameHeader } from "./types.ts";
 * declare const header: FrameHeader;
 * declare const payload: Uint8Array;
 * const blockDigests = verifyPayload(header, payload); // Uint8Array | null
 * ```
 */
export function verifyPayload(header: FrameHeader, payload: Uint8Array): Uint8Array | null {
  if (payload.length !== header.payloadLength) {
    throw frameError(
      header.lsn,
      `payload is ${payload.length} bytes, header says ${header.payloadLength}`,
    );
  }
  const { digest, blockDigests } = verifyingDigest(payload, header.flags);
  if (!equalBytes(digest, header.payloadDigest)) {
    throw frameError(header.lsn, "payload digest mismatch");
  }
  return blockDigests;
}

/**
 * A frame {@link decodeFrame} verified. Block digests verifying did not give
 * are hashed on first use: the destination stores and forwards frames without
 * ever needing them, so verifying costs one pass over the payload, not two.
 */
class DecodedFrame implements Frame {
  readonly header: FrameHeader;
  readonly bytes: Uint8Array;
  readonly payload: Uint8Array;
  #blockDigests: Uint8Array | null;

  constructor(
    header: FrameHeader,
    bytes: Uint8Array,
    payload: Uint8Array,
    blockDigests: Uint8Array | null,
  ) {
    this.header = header;
    this.bytes = bytes;
    this.payload = payload;
    this.#blockDigests = blockDigests;
  }

  get blockDigests(): Uint8Array {
    return this.#blockDigests ??= alignedBlockDigests(this.payload);
  }

  /** The block digests if hashed already, else null. */
  get hashedBlockDigests(): Uint8Array | null {
    return this.#blockDigests;
  }
}

/**
 * Decodes and fully verifies one whole frame; `bytes` must be exactly one frame.
 *
 * @throws FrameError on any defect, including trailing or missing bytes.
 *
 * @example
 * ```ts
 * declare const bytes: Uint8Array;
 * const { header, payload, blockDigests } = decodeFrame(bytes); // blockDigests hashed on use
 * ```
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  const header = decodeHeader(bytes);
  if (bytes.length !== header.frameLength) {
    throw frameError(
      header.lsn,
      `${
        bytes.length < header.frameLength ? "truncated" : "trailing bytes"
      }: got ${bytes.length} bytes, frame length is ${header.frameLength}`,
    );
  }
  const payload = bytes.subarray(HEADER_SIZE + header.keyLength);
  return new DecodedFrame(header, bytes, payload, verifyPayload(header, payload));
}

/**
 * Log frames: the NVLOG record format, the same bytes on disk and on the wire
 * (the destination appends what it receives without re-encoding).
 *
 * - {@link encodeFrame}: fields + payload -> bytes (+ 4 KiB block digests as a by-product);
 *   {@link framePayload}: a payload buffer the frame is then built around (no copy);
 * - {@link decodeHeader} / {@link verifyPayload} / {@link decodeFrame}: validation;
 * - {@link FrameReader} / {@link FrameParser} / {@link parseFrames}: streaming, bounded;
 * - {@link encodeRefFrame} / {@link WireFrameReader}: reference frames (wire only: a payload as
 *   pieces the destination holds);
 * - {@link FrameError}: every defect.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader, Flag, Op } from "./mod.ts";
 * const { bytes } = encodeFrame(
 *   { lsn: 1, op: Op.WRITE, flags: Flag.COMMIT_NOW | Flag.REPLACE, key: "k", txn: 1, offset: 0, mtime: 0 },
 *   new Uint8Array(10),
 * );
 * const frames = ReadableStream.from([bytes]).pipeThrough(new FrameReader());
 * ```
 *
 * @module
 */
export * from "./constants.ts";
export { FrameError } from "./error.ts";
export type { Frame, FrameFields, FrameHeader } from "./types.ts";
export { type EncodedFrame, encodeFrame, framePayload } from "./encode.ts";
export {
  checkPrefix,
  decodeFrame,
  decodeHeader,
  hashedBlockDigests,
  isVerifiedFrame,
  PREFIX_SIZE,
  verifyPayload,
} from "./decode.ts";
export {
  FrameParser,
  FrameReader,
  type FrameReaderOptions,
  isWholeFrame,
  parseFrames,
  type WireFrame,
  WireFrameParser,
  WireFrameReader,
} from "./reader.ts";
export {
  decodeRefFrame,
  encodeRefFrame,
  MAX_REF_PIECES,
  type Piece,
  pieceLength,
  REF_CHECK_BYTES,
  REF_FORMAT,
  REF_MAGIC,
  type RefFrame,
} from "./ref-frame.ts";
export { hashPayload, type PayloadHash } from "./hash.ts";

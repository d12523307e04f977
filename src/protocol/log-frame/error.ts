/**
 * The one error type of frame encoding, decoding and validation.
 *
 * @module
 */

/**
 * A frame is malformed, fails a checksum, or breaks a sequencing rule.
 *
 * Every invalid input to the frame layer surfaces as a `FrameError` (never a
 * `RangeError` from a DataView or an unbounded buffer), so the receiver can
 * answer with a clear 4xx and keep running.
 *
 * @example
 * ```ts
 * import { decodeHeader } from "./decode.ts";
 * declare const bytes: Uint8Array;
 * try {
 *   decodeHeader(bytes);
 * } catch (e) {
 *   if (e instanceof FrameError) console.log(e.message); // "frame at LSN 17: header checksum mismatch"
 * }
 * ```
 */
export class FrameError extends Error {
  /** The LSN the frame claims, when enough of the header was there to read it. */
  readonly lsn: number | undefined;

  /** Creates the error; `lsn` is the frame's claimed LSN, if known. */
  constructor(message: string, lsn?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "FrameError";
    this.lsn = lsn;
  }
}

/** Builds a FrameError whose message starts with the frame's LSN when known. */
export function frameError(lsn: number | undefined, reason: string): FrameError {
  return new FrameError(
    lsn === undefined ? `frame: ${reason}` : `frame at LSN ${lsn}: ${reason}`,
    lsn,
  );
}

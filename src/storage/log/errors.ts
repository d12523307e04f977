/**
 * Errors of the NVLOG.
 *
 * @module
 */

/**
 * The log on disk is damaged somewhere other than a torn tail, so opening it
 * would lose or reorder durable records. Names the segment file and offset.
 *
 * @example
 * ```ts
 * import { NvLog } from "./nvlog.ts";
 * const dir = await Deno.makeTempDir();
 * try { await NvLog.open(dir); } catch (e) {
 *   if (e instanceof LogCorruptionError) console.error(e.segment, e.offset);
 * }
 * ```
 */
export class LogCorruptionError extends Error {
  /** File name of the damaged segment. */
  readonly segment: string;
  /** File offset of the first bad frame. */
  readonly offset: number;

  /** Creates the error; `reason` says what is wrong at that offset. */
  constructor(segment: string, offset: number, reason: string) {
    super(`NVLOG corrupt: segment ${segment} offset ${offset}: ${reason}`);
    this.name = "LogCorruptionError";
    this.segment = segment;
    this.offset = offset;
  }
}

/** The log refused an operation because of its state (closed, failed, busy). */
export class LogStateError extends Error {
  /** Creates the error, with e.g. the underlying I/O error as `cause`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LogStateError";
  }
}

/**
 * Domain errors: what went wrong, as a stable code and a message, with no
 * transport attached. Storage, protocol and the appliances raise them; the
 * HTTP layer maps each code to a status in one place (`src/http/errors.ts`).
 * Anything that is not a {@link RefsyncError} is an internal failure.
 *
 * @example
 * ```ts
 * import { RefsyncError } from "./mod.ts";
 * const e = new RefsyncError("not_found", "no object with key 'a'");
 * console.assert(e.code === "not_found");
 * ```
 *
 * @module
 */

/** Stable machine-readable error codes (the `error` field of a JSON answer). */
export type ErrorCode =
  | "bad_request"
  | "bad_key"
  | "bad_range"
  | "unauthorized"
  | "forbidden"
  | "fenced"
  | "not_found"
  | "method_not_allowed"
  | "request_timeout"
  | "conflict"
  | "length_required"
  | "precondition_failed"
  | "too_large"
  | "range_not_satisfiable"
  | "unavailable"
  | "no_space"
  | "corrupt"
  | "internal";

/**
 * An expected failure with its code; `details` travel with it into the
 * answer (e.g. `{need: [blocks]}`).
 *
 * @example
 * ```ts
 * import { RefsyncError } from "./mod.ts";
 * throw new RefsyncError("too_large", "the object would be 6 GiB; --max-object-bytes is 5 GiB");
 * ```
 */
export class RefsyncError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = "RefsyncError";
    this.code = code;
    this.details = details;
  }
}

/**
 * True when `e` is a {@link RefsyncError} with `code`.
 *
 * @example
 * ```ts
 * import { isError, RefsyncError } from "./mod.ts";
 * isError(new RefsyncError("no_space", "disk full"), "no_space"); // true
 * ```
 */
export function isError(e: unknown, code: ErrorCode): e is RefsyncError {
  return e instanceof RefsyncError && e.code === code;
}

/**
 * The message of any thrown value.
 *
 * @example
 * ```ts
 * import { errorMessage } from "./mod.ts";
 * errorMessage(new Error("EIO")); // "EIO"
 * ```
 */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

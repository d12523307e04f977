/**
 * The one error type that crosses module boundaries with an HTTP status: the
 * storage engine throws it for bad requests, the HTTP apps turn it into a JSON
 * `{error, message}` answer.
 *
 * @module
 */

/** Stable machine-readable error codes of the HTTP API. */
export type ErrorCode =
  | "bad_request"
  | "bad_key"
  | "bad_range"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "length_required"
  | "too_large"
  | "range_not_satisfiable"
  | "conflict"
  | "unavailable"
  | "internal";

/**
 * An error with the HTTP status and code it is answered with.
 *
 * @example
 * ```ts
 * throw new RefsyncError(404, "not_found", "no object with key 'a'");
 * ```
 */
export class RefsyncError extends Error {
  readonly status: number;
  readonly code: ErrorCode;

  constructor(status: number, code: ErrorCode, message: string) {
    super(message);
    this.name = "RefsyncError";
    this.status = status;
    this.code = code;
  }
}

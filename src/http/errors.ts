/**
 * The one place where domain errors become HTTP answers. Every failure is JSON
 * `{error, message}` with the status of its code; anything that is not a
 * {@link RefsyncError} is an internal failure: logged, answered 500, never
 * blamed on the client.
 *
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, errorMessage, RefsyncError } from "../errors/mod.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";

/** The HTTP status of each error code. */
export const STATUS_OF: Readonly<Record<ErrorCode, ContentfulStatusCode>> = {
  bad_request: 400,
  bad_key: 400,
  bad_range: 400,
  unauthorized: 401,
  forbidden: 403,
  fenced: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  conflict: 409,
  length_required: 411,
  precondition_failed: 412,
  too_large: 413,
  range_not_satisfiable: 416,
  internal: 500,
  corrupt: 500,
  unavailable: 503,
  no_space: 507,
};

/**
 * Answers `status` with `{error: code, message}`.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.get("/x", (c) => jsonError(c, 404, "not_found", "no such thing"));
 * ```
 */
export function jsonError(
  c: Context,
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
  details: Record<string, unknown> = {},
): Response {
  return c.json({ error: code, message, ...details }, status as ContentfulStatusCode, headers);
}

/**
 * The answer to `err`: its code's status for a {@link RefsyncError}, else a
 * 500 logged to `logger`.
 */
export function errorResponse(c: Context, err: unknown, logger: Logger = rootLogger()): Response {
  if (err instanceof RefsyncError) {
    const headers: Record<string, string> = {};
    if (err.code === "unavailable") headers["Retry-After"] = "1";
    if (err.code === "unauthorized") headers["WWW-Authenticate"] = 'Bearer realm="refsync"';
    // The rest of a stalled body is not awaited: the connection ends (RFC 9110 §15.5.9).
    if (err.code === "request_timeout") headers["Connection"] = "close";
    return jsonError(c, STATUS_OF[err.code], err.code, err.message, headers, err.details);
  }
  logger.error("http.internal_error", {
    method: c.req.method,
    path: c.req.path,
    cause: errorMessage(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return jsonError(c, 500, "internal", `internal error: ${errorMessage(err)}`);
}

/**
 * Hono error handler: see {@link errorResponse}; internal failures are
 * logged to the appliance's `logger` (the simulator checks its lines).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { type Logger, rootLogger } from "../logging/mod.ts";
 * const app = new Hono();
 * app.onError(errorHandler(rootLogger()));
 * ```
 */
export function errorHandler(logger: Logger = rootLogger()): ErrorHandler {
  return (err, c) => errorResponse(c, err, logger);
}

/** Hono not-found handler. */
export const notFound: NotFoundHandler = (c) =>
  jsonError(
    c,
    404,
    "not_found",
    `no route for ${c.req.method} ${c.req.path}; see the README for the API`,
  );

/**
 * A 405 answer naming the allowed methods.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.all("/v1/admin/cp", (c) => methodNotAllowed(c, ["POST"]));
 * ```
 */
export function methodNotAllowed(c: Context, allowed: string[]): Response {
  return jsonError(
    c,
    405,
    "method_not_allowed",
    `${c.req.method} is not allowed here; use ${allowed.join(", ")}`,
    { Allow: allowed.join(", ") },
  );
}

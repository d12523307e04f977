/**
 * JSON error answers shared by both appliances: every failure is
 * `{error, message}` with the fitting status, never an HTML page or a crash.
 *
 * @module
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, RefsyncError } from "../errors/mod.ts";

/**
 * Answers `status` with `{error: code, message}`.
 *
 * @example
 * ```ts
 * app.get("/x", (c) => jsonError(c, 404, "not_found", "no such thing"));
 * ```
 */
export function jsonError(
  c: Context,
  status: number,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return c.json({ error: code, message }, status as ContentfulStatusCode, headers);
}

/** Hono error handler: RefsyncError keeps its status; anything else is a 500 that is logged. */
export const onError: ErrorHandler = (err, c) => {
  if (err instanceof RefsyncError) {
    const headers: Record<string, string> = {};
    if (err.status === 503) headers["Retry-After"] = "1";
    return jsonError(c, err.status, err.code, err.message, headers);
  }
  console.error(`${c.req.method} ${c.req.path}:`, err);
  return jsonError(c, 500, "internal", err instanceof Error ? err.message : String(err));
};

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

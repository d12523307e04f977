/**
 * Bearer-token middleware: 401 with `WWW-Authenticate` unless the request
 * carries the expected token, compared in constant time.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { tokensEqual } from "../protocol/auth/mod.ts";
import { jsonError } from "./errors.ts";

/**
 * Hono middleware: 401 unless `Authorization: Bearer <token>` matches.
 *
 * @example
 * ```ts
 * app.use("/v1/repl/*", requireToken(() => token));
 * ```
 */
export function requireToken(token: () => string): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("Authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (given === "" || !tokensEqual(given, token())) {
      return jsonError(
        c,
        401,
        "unauthorized",
        given === ""
          ? "replication needs the pair token (Authorization: Bearer ...)"
          : "wrong pair token",
      );
    }
    await next();
  };
}

/**
 * Bearer-token checks of the HTTP API: 401 with `WWW-Authenticate` unless the
 * request carries the expected token (compared in constant time), and every
 * refusal logged (`auth.refused`, with the peer address, never the token).
 *
 * Why not `hono/bearer-auth`: it answers 400 (not 401) to a malformed header
 * or to a token outside RFC 6750's token68 characters, so a `--token` a user
 * chose with such a character could never authenticate; and its
 * HTTPException would reach our error handler as an internal failure.
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { tokensEqual } from "../protocol/auth/mod.ts";
import { errorResponse } from "./errors.ts";

/** Which credential a check wants: the pair token or the client token. */
export type TokenKind = "pair" | "client";

/** How {@link requireToken} checks and reports. */
export interface TokenCheckOptions {
  /** Names the token in messages and logs (default "pair"). */
  kind?: TokenKind;
  /** Where refusals are logged (default: the root logger). */
  logger?: Logger;
}

const HOW_TO_GET: Record<TokenKind, string> = {
  pair: "the destination prints it; it is kept in DATA/pair-token",
  client: "the appliance's --client-token",
};

/**
 * The credentials of an `Authorization` value with the `Bearer` scheme, any
 * case, then one or more spaces (RFC 9110 §11.4); null for any other scheme
 * or none.
 *
 * @example
 * ```ts
 * bearerCredentials("bearer abc"); // "abc"
 * bearerCredentials("Basic abc"); // null
 * ```
 */
export function bearerCredentials(header: string | undefined): string | null {
  const m = /^bearer +(.*)$/is.exec(header ?? "");
  return m && m[1] !== "" ? m[1] : null;
}

/**
 * Hono middleware: 401 unless `Authorization: Bearer <token>` matches. The
 * token is read per request (so a caller may change it).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * app.use("/v1/repl/*", requireToken(() => "secret"));
 * ```
 */
export function requireToken(
  token: () => string,
  options: TokenCheckOptions = {},
): MiddlewareHandler {
  const kind = options.kind ?? "pair";
  return async (c, next) => {
    const given = bearerCredentials(c.req.header("Authorization"));
    if (given === null || !tokensEqual(given, token())) {
      (options.logger ?? rootLogger()).warn("auth.refused", {
        token: kind,
        reason: given === null ? "missing" : "wrong",
        peer: peerAddress(c),
        method: c.req.method,
        path: c.req.path,
      });
      return errorResponse(
        c,
        new RefsyncError(
          "unauthorized",
          given === null
            ? `this call needs the ${kind} token (Authorization: Bearer TOKEN; ${HOW_TO_GET[kind]})`
            : `wrong ${kind} token`,
        ),
      );
    }
    await next();
  };
}

/** The tokens an appliance's HTTP API checks. */
export interface AccessTokens {
  /** Required on every admin POST (a state change: CP, promotion, ...). */
  pair: string;
  /** Required on every object call when set. */
  client: string | null;
  logger?: Logger;
}

/**
 * Registers the checks every appliance makes, before its routes: the pair
 * token on every `POST /v1/admin/...` (reads of stats and digest stay open),
 * the client token, when configured, on every `/v1/objects` call.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * const app = new Hono();
 * registerAccessChecks(app, { pair: "secret", client: null });
 * ```
 */
export function registerAccessChecks(app: Hono, tokens: AccessTokens): void {
  const { logger } = tokens;
  const pair = requireToken(() => tokens.pair, { kind: "pair", logger });
  app.use("/v1/admin/*", (c, next) => c.req.method === "POST" ? pair(c, next) : next());
  if (tokens.client !== null) {
    const client = tokens.client;
    const check = requireToken(() => client, { kind: "client", logger });
    app.use("/v1/objects/*", check); // matches the listing, /v1/objects, too
  }
}

/**
 * `host:port` of the client, from the `Deno.ServeHandlerInfo` that
 * `app.fetch(req, info)` makes the Hono env; null when unknown (e.g.
 * `app.request` in a test).
 */
function peerAddress(c: Context): string | null {
  const addr = (c.env as Partial<Deno.ServeHandlerInfo> | undefined)?.remoteAddr;
  if (!addr) return null;
  if ("hostname" in addr) {
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  return "path" in addr ? addr.path : null;
}

/**
 * The read side of the object API, shared by both appliances (the destination
 * serves these from its last committed CP): GET (with `Range` and conditional
 * headers), HEAD, list.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { isError, RefsyncError } from "../errors/mod.ts";
import type { ClientMetrics } from "../metrics/appliance.ts";
import { isReservedKey } from "../storage/objects/key.ts";
import type { ObjectInfo, ObjectStore } from "../storage/objects/store.ts";
import { checkConditions, etagHeader, parseConditions, rangeAllowed } from "./conditional.ts";
import { parseRange } from "./range.ts";
import { queryParam, rawPath } from "./target.ts";

/** Path prefix of object keys. */
export const OBJECTS_PREFIX = "/v1/objects/";

/**
 * The object key of a request: the rest of the path after `/v1/objects/` as
 * the client sent it, percent-decoded once. Dot segments are part of the key
 * (`a/../b` is the key `a/../b`, never `b`).
 *
 * @example
 * ```ts
 * objectKey("http://h/v1/objects/a%2Fb/c"); // "a/b/c"
 * objectKey("http://h/v1/objects/x/../y"); // "x/../y"
 * ```
 */
export function objectKey(url: string): string {
  const path = rawPath(url);
  if (!path.startsWith(OBJECTS_PREFIX)) {
    // The router decodes unreserved escapes (`/v1/%6Fbjects/`); the key's prefix must be literal.
    throw new RefsyncError(
      "bad_key",
      `an object path starts with ${OBJECTS_PREFIX} as is; got '${path.slice(0, 100)}'`,
    );
  }
  let key: string;
  try {
    key = decodeURIComponent(path.slice(OBJECTS_PREFIX.length));
  } catch {
    throw new RefsyncError("bad_key", "the key is not valid percent-encoded UTF-8");
  }
  if (isReservedKey(key)) {
    throw new RefsyncError(
      "bad_key",
      "keys beginning with U+10FFFF are reserved for the appliance",
    );
  }
  return key;
}

/** Headers describing an object. */
export function objectHeaders(info: ObjectInfo): Record<string, string> {
  return {
    "ETag": etagHeader(info.etag),
    "Last-Modified": new Date(info.mtime).toUTCString(),
    "Accept-Ranges": "bytes",
  };
}

/** Counters the read routes keep. */
export interface ReadCounters {
  /** GETs of an object (bodies served, 304s included). */
  gets: number;
  heads: number;
  bytesRead: number;
}

/**
 * Registers GET/HEAD `/v1/objects/{key}` and GET `/v1/objects` on `app`.
 * (Hono routes HEAD to the GET handler and drops the body; the handler
 * answers HEAD itself so that no body is ever opened for it.)
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { ApplianceMetrics } from "../metrics/appliance.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const metrics: ApplianceMetrics;
 * const app = new Hono();
 * registerObjectReads(app, () => store, { gets: 0, heads: 0, bytesRead: 0 }, metrics);
 * ```
 */
export function registerObjectReads(
  app: Hono,
  store: () => ObjectStore,
  counters: ReadCounters,
  metrics: ClientMetrics,
): void {
  app.get("/v1/objects", (c) => list(c, store()));
  app.get("/v1/objects/*", (c) => {
    const key = objectKey(c.req.url);
    if (key === "") return list(c, store());
    const s = store();
    const info = s.stat(key);
    if (!info) throw new RefsyncError("not_found", `no object with key '${key}'`);
    const head = c.req.method === "HEAD";
    const described = objectHeaders(info);
    if (checkConditions(parseConditions(c.req.raw.headers), info, true) === "not_modified") {
      if (head) counters.heads++;
      else counters.gets++;
      return c.body(null, 304, described);
    }
    if (head) {
      // Range is defined for GET only (RFC 9110 §14.2): HEAD describes the whole object.
      counters.heads++;
      return c.body(null, 200, { ...described, "Content-Length": String(info.size) });
    }
    let range = null;
    if (rangeAllowed(c.req.header("If-Range"), info)) {
      try {
        range = parseRange(c.req.header("Range"), info.size);
      } catch (e) {
        if (isError(e, "range_not_satisfiable")) {
          return c.json({ error: e.code, message: e.message }, 416, {
            "Content-Range": `bytes */${info.size}`,
          });
        }
        throw e;
      }
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? info.size;
    counters.gets++;
    counters.bytesRead += end - start;
    metrics.clientBytes("out", end - start);
    const headers: Record<string, string> = {
      ...described,
      "Content-Length": String(end - start),
      "Content-Type": "application/octet-stream",
    };
    if (range) headers["Content-Range"] = `bytes ${start}-${end - 1}/${info.size}`;
    return c.body(s.read(key, start, end), range ? 206 : 200, headers);
  });
}

function list(c: Context, store: ObjectStore): Response {
  const url = c.req.url;
  const limitText = queryParam(url, "limit");
  const limit = limitText === undefined ? 1000 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000) {
    throw new RefsyncError("bad_request", "limit must be an integer from 1 to 10000");
  }
  const page = store.list({
    prefix: queryParam(url, "prefix") || undefined,
    startAfter: queryParam(url, "start-after") || undefined,
    limit,
  });
  // Reserved keys sort last: the listing ends where they begin.
  const cut = page.objects.findIndex((o) => isReservedKey(o.key));
  const objects = cut === -1 ? page.objects : page.objects.slice(0, cut);
  const next = cut === -1 ? page.next : null;
  return c.json({
    objects: objects.map((o) => ({ key: o.key, size: o.size, etag: o.etag, mtime: o.mtime })),
    next,
  });
}

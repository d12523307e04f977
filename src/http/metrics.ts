/**
 * `GET /metrics` (Prometheus text format, no token: read-only like
 * `/v1/admin/stats`) and the one middleware that counts and times the native
 * object API's requests, for both appliances' apps.
 *
 * @module
 */
import type { Hono } from "hono";
import type { ApplianceMetrics } from "../metrics/appliance.ts";
import { TEXT_CONTENT_TYPE } from "../metrics/exposition.ts";
import { methodNotAllowed } from "./errors.ts";
import { OBJECTS_PREFIX } from "./objects.ts";

/**
 * The `op` label of a native object API request (`put`, `get`, `head`,
 * `delete`, `list`, `other` for any other method), or null for a request
 * outside it (admin, replication, `/metrics`: not client requests).
 *
 * @example
 * ```ts
 * nativeOp("PUT", "/v1/objects/a/b"); // "put"
 * nativeOp("GET", "/v1/objects"); // "list"
 * nativeOp("GET", "/v1/admin/stats"); // null
 * ```
 */
export function nativeOp(method: string, path: string): string | null {
  // An empty key lists, as the GET route does.
  const listing = path === "/v1/objects" || path === OBJECTS_PREFIX;
  if (!listing && !path.startsWith(OBJECTS_PREFIX)) return null;
  switch (method) {
    case "GET":
      return listing ? "list" : "get";
    case "HEAD":
      return listing ? "list" : "head";
    case "PUT":
      return "put";
    case "DELETE":
      return "delete";
    default:
      return "other";
  }
}

/**
 * Registers the request middleware (first, so that refusals by the access
 * checks are counted too) and `GET /metrics` on `app`. Call it before any
 * other middleware or route.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { registerAccessChecks } from "./auth.ts";
 * import type { ApplianceMetrics } from "../metrics/appliance.ts";
 * declare const metrics: ApplianceMetrics;
 * declare const tokens: { pair: string; client: string | null };
 * const app = new Hono();
 * registerMetrics(app, metrics);
 * registerAccessChecks(app, tokens);
 * ```
 */
export function registerMetrics(app: Hono, metrics: ApplianceMetrics): void {
  app.use(async (c, next) => {
    const op = nativeOp(c.req.method, c.req.path);
    if (op === null) return await next();
    const started = performance.now();
    // Hono answers a thrown error inside next() (onError): c.res is the answer either way.
    await next();
    metrics.request("native", op, c.res.status, (performance.now() - started) / 1000);
  });
  app.get(
    "/metrics",
    (c) => c.body(metrics.render(), 200, { "Content-Type": TEXT_CONTENT_TYPE }),
  );
  app.all("/metrics", (c) => methodNotAllowed(c, ["GET"]));
}

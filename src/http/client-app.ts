/**
 * The client API (Hono): object writes and reads, CPs, digest and stats. A
 * source serves it, and so does a destination once promoted (it is a source
 * then), which is why it lives here and not in either appliance.
 *
 * @module
 */
import { Hono } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import type { ApplianceMetrics } from "../metrics/appliance.ts";
import { processStats } from "../metrics/process.ts";
import { newWireStats, type WireStats } from "../protocol/cp-sync/stats.ts";
import type { Clock } from "../runtime/clock.ts";
import { encodeKey } from "../storage/objects/key.ts";
import type { ObjectStore, Precondition } from "../storage/objects/store.ts";
import { registerAccessChecks } from "./auth.ts";
import { DEFAULT_BODY_IDLE_TIMEOUT_MS, withIdleTimeout } from "./body-timeout.ts";
import { checkConditions, etagHeader, parseConditions } from "./conditional.ts";
import { errorHandler, methodNotAllowed, notFound } from "./errors.ts";
import type { Logger } from "../logging/mod.ts";
import { registerMetrics } from "./metrics.ts";
import { registerSourceReplication } from "./repl-state.ts";
import { mirrorHeader } from "./mirror-header.ts";
import { objectKey, registerObjectReads } from "./objects.ts";
import { parseContentRange } from "./range.ts";

/** What the client app needs. */
export interface ClientAppContext {
  store: ObjectStore;
  /** The pair token: every admin POST (CP) needs it. */
  token: string;
  /** When set, every object call needs it (`--client-token`). */
  clientToken?: string | null;
  maxObjectBytes: number;
  /** Replication counters when a destination is configured. */
  wire: () => WireStats | null;
  /**
   * Resolves when a write may be logged; rejects with why not (`fenced`: the
   * destination was promoted over this source, 403; `unavailable`: the mirror
   * is refused or unreachable, 503). Awaited before anything is logged, so a
   * refused write is never applied.
   */
  admitWrite?: () => Promise<void>;
  /** A destination mirrors this source: acknowledged writes carry `Refsync-Mirror`. */
  mirror?: boolean;
  /** Extra fields for /v1/admin/stats (mirror state). */
  mirrorStats?: () => Record<string, unknown>;
  role?: string;
  /** A request body that sends nothing for this long (ms) is cut with 408 (default 30 s). */
  bodyIdleTimeoutMs?: number;
  /** The appliance's metrics: served as /metrics, bumped by client requests. */
  metrics: ApplianceMetrics;
  /** The clock of the body idle timer (the simulator's). Default the system clock. */
  clock?: Clock;
  /** Where internal failures are logged. Default the root logger. */
  logger?: Logger;
}

/** Client counters of the client app. */
export interface ClientStats {
  puts: number;
  rangedPuts: number;
  deletes: number;
  gets: number;
  heads: number;
  bytesWritten: number;
  bytesRead: number;
}

/**
 * Builds the client app.
 *
 * @example
 * ```ts
 * import type { ApplianceMetrics } from "../metrics/appliance.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const metrics: ApplianceMetrics;
 * const token = "pair-token";
 * const app = createClientApp({ store, token, maxObjectBytes: 5 << 30, wire: () => null, metrics });
 * Deno.serve({ hostname: "127.0.0.1", port: 8080 }, app.fetch);
 * ```
 */
export function createClientApp(ctx: ClientAppContext): Hono {
  const { store } = ctx;
  const client: ClientStats = {
    puts: 0,
    rangedPuts: 0,
    deletes: 0,
    gets: 0,
    heads: 0,
    bytesWritten: 0,
    bytesRead: 0,
  };
  const app = new Hono();
  app.onError(errorHandler(ctx.logger));
  app.notFound(notFound);
  registerMetrics(app, ctx.metrics);
  registerAccessChecks(app, { pair: ctx.token, client: ctx.clientToken ?? null });
  registerSourceReplication(app, store, ctx.token);
  const assertWritable = async () => {
    await ctx.admitWrite?.();
  };

  app.put("/v1/objects/*", async (c) => {
    const key = objectKey(c.req.url);
    encodeKey(key); // a bad key is refused before the body is read
    await assertWritable();
    const conditions = parseConditions(c.req.raw.headers);
    const lengthHeader = c.req.header("Content-Length");
    const length = lengthHeader === undefined ? undefined : Number(lengthHeader);
    if (length === undefined && c.req.header("Transfer-Encoding") === undefined) {
      throw new RefsyncError("length_required", "a PUT needs Content-Length or a chunked body");
    }
    if (length !== undefined && !(Number.isSafeInteger(length) && length >= 0)) {
      throw new RefsyncError("bad_request", "Content-Length is not a non-negative integer");
    }
    const contentRange = c.req.header("Content-Range");
    const range = contentRange === undefined ? null : parseContentRange(contentRange);
    if (range && length !== undefined && length !== range.end - range.start) {
      throw new RefsyncError(
        "bad_range",
        `Content-Range spans ${range.end - range.start} bytes but Content-Length is ${length}`,
      );
    }
    const end = range ? range.end : length ?? 0;
    if (end > ctx.maxObjectBytes) {
      throw new RefsyncError(
        "too_large",
        `the object would be ${end} bytes; --max-object-bytes is ${ctx.maxObjectBytes}`,
      );
    }
    const precondition: Precondition = (current) => {
      checkConditions(conditions, current, false);
      if (range === null || range.total === null) return;
      const size = Math.max(current?.size ?? 0, range.end);
      if (size !== range.total) {
        throw new RefsyncError(
          "bad_range",
          `Content-Range announces an object of ${range.total} bytes, but this write leaves ${size}`,
        );
      }
    };
    const body = withIdleTimeout(
      c.req.raw.body,
      ctx.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS,
      ctx.clock,
    );
    const result = await store.write(key, body, {
      replace: range === null,
      offset: range?.start ?? 0,
      length: range ? range.end - range.start : length,
      precondition,
    });
    if (range) client.rangedPuts++;
    else client.puts++;
    const written = range ? range.end - range.start : result.size;
    client.bytesWritten += written;
    ctx.metrics.clientBytes("in", written);
    const headers = mirrorHeader(ctx.mirror === true, result.mirrored);
    if (result.etag) headers["ETag"] = etagHeader(result.etag);
    return c.json(
      { key, size: result.size, etag: result.etag, lsn: result.lsn },
      result.created ? 201 : 200,
      headers,
    );
  });

  app.delete("/v1/objects/*", async (c) => {
    const key = objectKey(c.req.url);
    await assertWritable();
    const conditions = parseConditions(c.req.raw.headers);
    const done = await store.delete(key, {
      precondition: (current) => checkConditions(conditions, current, false),
    });
    if (!done) throw new RefsyncError("not_found", `no object with key '${key}'`);
    client.deletes++;
    return c.body(null, 204, mirrorHeader(ctx.mirror === true, done.mirrored));
  });

  registerObjectReads(app, () => store, client, ctx.metrics);
  app.all("/v1/objects/*", (c) => methodNotAllowed(c, ["GET", "HEAD", "PUT", "DELETE"]));
  app.all("/v1/objects", (c) => methodNotAllowed(c, ["GET"]));

  app.post("/v1/admin/cp", async (c) => {
    await store.checkpoint();
    const sb = store.superblock;
    return c.json({ cp: sb.cp, lsn: sb.lsnCovered, digest: store.digest().digest });
  });
  app.all("/v1/admin/cp", (c) => methodNotAllowed(c, ["POST"]));

  app.get("/v1/admin/digest", (c) => c.json(store.digest()));
  app.all("/v1/admin/digest", (c) => methodNotAllowed(c, ["GET"]));

  app.get("/v1/admin/stats", (c) => {
    const durations = [...store.stats.cp.durationsMs].sort((a, b) => a - b);
    const pct = (p: number) =>
      durations.length
        ? durations[Math.min(durations.length - 1, Math.floor(p * durations.length))]
        : 0;
    return c.json({
      role: ctx.role ?? "source",
      cp: {
        committed: store.stats.cp.committed,
        lastDurationMs: round(store.stats.cp.lastDurationMs),
        p50Ms: round(pct(0.5)),
        p99Ms: round(pct(0.99)),
        count: durations.length,
      },
      lsn: { ...store.stats.lsn },
      dirtyBytes: store.dirtyBytes,
      client,
      wire: ctx.wire() ?? newWireStats(),
      ...(ctx.mirrorStats?.() ?? {}),
      process: processStats(),
    });
  });
  app.all("/v1/admin/stats", (c) => methodNotAllowed(c, ["GET"]));
  return app;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

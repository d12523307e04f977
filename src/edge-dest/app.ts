/**
 * The destination appliance's HTTP API (Hono): replication endpoints for its
 * source (pair token required), reads of its last committed CP for clients,
 * 403 for client writes, and promotion.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { registerAccessChecks, requireToken } from "../http/auth.ts";
import type { Logger } from "../logging/mod.ts";
import { DEFAULT_BODY_IDLE_TIMEOUT_MS, withIdleTimeout } from "../http/body-timeout.ts";
import { RefsyncError } from "../errors/mod.ts";
import { errorHandler, methodNotAllowed, notFound } from "../http/errors.ts";
import { registerMetrics } from "../http/metrics.ts";
import { replicationState } from "../http/repl-state.ts";
import { type ReadCounters, registerObjectReads } from "../http/objects.ts";
import type { ApplianceMetrics } from "../metrics/appliance.ts";
import { processStats } from "../metrics/process.ts";
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import type { Clock } from "../runtime/clock.ts";
import { LinkDecoder } from "../protocol/link-compress/mod.ts";
import { CpSyncSessions, MAX_PART_BYTES } from "./cp-sync-session.ts";
import { applyCatchUp } from "./cp-apply.ts";
import { promotionRefused } from "../storage/objects/catch-up.ts";
import { beginCatchUp, refuseReadsWhileCatchingUp } from "./catch-up.ts";
import { receiveLog } from "./log-receiver.ts";
import { PromotionGate } from "./promotion-gate.ts";
import { registerVerifyRoutes } from "./verify-routes.ts";

/**
 * The most one compressed request may decode to: a CP sync part's limit, and
 * for log twice the source's largest batch (8 MiB, one record past it).
 */
const MAX_DECODED = {
  cpSyncBytes: MAX_PART_BYTES,
  baselineBytes: MAX_PART_BYTES,
  resyncBytes: MAX_PART_BYTES,
  logBytes: 16 << 20,
} as const;

/** What the destination app needs. */
export interface DestAppContext {
  store: ObjectStore;
  /** The pair token: replication and every admin POST (promotion) need it. */
  token: string;
  /** When set, every object call needs it (`--client-token`). */
  clientToken?: string | null;
  wire: WireStats;
  /** Turns this appliance into a source; resolves with the new CP. */
  promote: () => Promise<{ cp: number; digest: string }>;
  /** A request body that sends nothing for this long (ms) is cut with 408 (default 30 s). */
  bodyIdleTimeoutMs?: number;
  /** The appliance's metrics: served as /metrics, bumped by client requests and applied CPs. */
  metrics: ApplianceMetrics;
  /** The clock of the body idle timer (the simulator's). Default the system clock. */
  clock?: Clock;
  /** Where its events go (repairs, reference misses); default the root logger. */
  logger?: Logger;
  /** The port of its log stream, announced in its state (null: none). */
  logStreamPort?: () => number | null;
}

/**
 * Builds the destination app.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * import type { ApplianceMetrics } from "../metrics/appliance.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const metrics: ApplianceMetrics;
 * const token = "pair-token";
 * const promote = async () => ({ cp: 1, digest: "..." });
 * const app = createDestApp({ store, token, wire: newWireStats(), promote, metrics });
 * Deno.serve({ hostname: "127.0.0.1", port: 8081 }, app.fetch);
 * ```
 */
export function createDestApp(ctx: DestAppContext): Hono {
  const { store, wire } = ctx;
  const reads: ReadCounters = { gets: 0, heads: 0, bytesRead: 0 };
  const link = new LinkDecoder();
  /**
   * The body of a replication request, decoded (link compression) and counted
   * as received into `counter`: a source that stalls is cut off, never waited on.
   */
  const body = (c: Context, counter: keyof typeof MAX_DECODED) =>
    link.decode(c.req.raw.headers, rawBody(c), {
      maxBytes: MAX_DECODED[counter],
      received: (n) => wire[counter] += n,
    });
  /** A request body as sent (repairs travel uncompressed), with the same idle bound. */
  const rawBody = (c: Context) =>
    withIdleTimeout(
      c.req.raw.body,
      ctx.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS,
      ctx.clock,
    );
  const app = new Hono();
  app.onError(errorHandler(ctx.logger));
  app.notFound(notFound);
  registerMetrics(app, ctx.metrics);
  registerAccessChecks(app, { pair: ctx.token, client: ctx.clientToken ?? null });
  /** The CP sync being applied: a promotion stops it first (its CP never commits). */
  const cpSync = new CpSyncSessions(
    store,
    wire,
    (c) => body(c, "cpSyncBytes"),
    (ms) => ctx.metrics.cpCommitted(ms),
  );
  /** The catch-up stream (baseline or resync) being applied, likewise. */
  const catchUp = new CpSyncSessions(
    store,
    wire,
    (c) => body(c, (store.catchUp?.baseCp ?? 0) === 0 ? "baselineBytes" : "resyncBytes"),
    undefined,
    applyCatchUp,
  );

  /** Replication requests under way: a promotion stops them and waits (./promotion-gate.ts). */
  const gate = new PromotionGate();
  /** Each one's signal that a promotion started. */
  const stops = new WeakMap<Request, AbortSignal>();
  /** Settles when the log batch being received (and every one before it) is answered. */
  let receiving: Promise<unknown> = Promise.resolve();
  const state = () => replicationState(store, ctx.logStreamPort?.() ?? null);
  app.use("/v1/repl/*", requireToken(() => ctx.token));
  app.use("/v1/repl/*", async (c, next) => {
    // The state stays readable: it is how a returning old source learns it was replaced.
    if (!store.isMirror && c.req.path !== "/v1/repl/state") {
      throw new RefsyncError(
        "conflict",
        `this appliance was promoted (pair generation ${store.superblock.pairGeneration}); it takes no replication`,
      );
    }
    // Reads (the state, a verify's digests) change nothing a promotion replays.
    if (c.req.method === "GET") return await next();
    await gate.enter(async (signal) => {
      stops.set(c.req.raw, signal);
      await next();
    });
  });
  app.get("/v1/repl/state", (c) => c.json(state()));
  app.post("/v1/repl/log", async (c) => {
    const stop = stops.get(c.req.raw);
    // One batch at a time, each checked against the log the one before left: an old
    // connection's last batch (or a late duplicate) may arrive beside the current one, and two
    // appending at once would answer for each other's records before they are durable.
    const turn = receiving.then(() =>
      receiveLog(store, body(c, "logBytes"), wire, ctx.logger, stop)
    );
    receiving = turn.catch(() => {});
    return c.json(await turn);
  });
  app.post("/v1/repl/log/reset", async (c) => {
    const body = await c.req.json().catch(() => null) as {
      lastLsn?: unknown;
      truncateAfter?: unknown;
      quarantineAfter?: unknown;
      ifLastLsn?: unknown;
    } | null;
    const sb = store.superblock;
    if (typeof body?.ifLastLsn !== "number") {
      throw new RefsyncError(
        "bad_request",
        "a log reset names where this log ends as the source saw it: {ifLastLsn: LSN}",
      );
    }
    // A reset that arrives late (a retry, a duplicate) must not cut records acknowledged since.
    if (body.ifLastLsn !== store.log.lastLsn) {
      throw new RefsyncError(
        "conflict",
        `stale log reset: it was asked when this log ended at LSN ${body.ifLastLsn}, ` +
          `and it ends at ${store.log.lastLsn} now`,
      );
    }
    if (typeof body?.truncateAfter === "number") {
      // The source lost an unacknowledged tail (never fsynced there): drop it here too.
      if (body.truncateAfter < sb.lsnCovered) {
        throw new RefsyncError(
          "conflict",
          `cannot truncate below the committed CP's LSN ${sb.lsnCovered}`,
        );
      }
      await store.log.truncateAfter(body.truncateAfter);
    } else if (typeof body?.quarantineAfter === "number") {
      // A failback: the tail the promoted side never received, kept for the operator.
      await store.setAsideDivergentLog(body.quarantineAfter);
    } else if (typeof body?.lastLsn === "number") {
      // The source dropped log that a CP committed here covers (or the recorded catch-up's
      // target will cover once it commits): skip to it.
      const covered = Math.max(sb.lsnCovered, store.catchUp?.lsnCovered ?? 0);
      if (body.lastLsn > covered) {
        throw new RefsyncError(
          "conflict",
          `LSN ${body.lastLsn} is past the committed CP's ${covered}`,
        );
      }
      await store.log.reset(body.lastLsn);
    } else {
      throw new RefsyncError(
        "bad_request",
        "give {truncateAfter: LSN, ifLastLsn: LSN}, {lastLsn: LSN, ifLastLsn: LSN} or " +
          "{quarantineAfter: LSN, ifLastLsn: LSN}",
      );
    }
    return c.json(state());
  });
  app.post("/v1/repl/cp", (c) => cpSync.handle(c));
  registerVerifyRoutes(app, store, rawBody, ctx.logger);
  app.post("/v1/repl/catch-up/begin", async (c) => {
    beginCatchUp(store, await c.req.json().catch(() => null));
    return c.json(state());
  });
  app.post("/v1/repl/catch-up", (c) => catchUp.handle(c));
  app.all("/v1/repl/*", (c) => methodNotAllowed(c, ["GET", "POST"]));

  const forbidden = () => {
    throw new RefsyncError(
      "forbidden",
      "this is the destination appliance: it takes writes only from its source; send writes to the source",
    );
  };
  app.put("/v1/objects/*", forbidden);
  app.delete("/v1/objects/*", forbidden);
  app.use("/v1/objects", refuseReadsWhileCatchingUp(store));
  app.use("/v1/objects/*", refuseReadsWhileCatchingUp(store));
  registerObjectReads(app, () => store, reads, ctx.metrics);
  app.all("/v1/objects/*", (c) => methodNotAllowed(c, ["GET", "HEAD"]));

  app.get("/v1/admin/digest", (c) => c.json(store.digest()));
  app.get("/v1/admin/stats", (c) =>
    c.json({
      role: "destination",
      cp: { committed: store.superblock.cp },
      lsn: { last: store.log.lastLsn, durable: store.log.durableLsn },
      client: reads,
      catchUp: store.catchUp,
      rejoin: store.rejoin,
      wire,
      process: processStats(),
    }));
  app.post("/v1/admin/promote", async (c) => {
    // Refused before anything stops: a catch-up left alone goes on.
    if (store.catchUp) throw promotionRefused(store.catchUp);
    // Replication under way ends first; a source that died mid-sync may have left its CP
    // stream open: that CP is abandoned.
    const stop = async () => {
      await cpSync.end();
      await catchUp.end();
    };
    return c.json(await gate.promote(ctx.promote, stop));
  });
  app.post("/v1/admin/cp", () => {
    throw new RefsyncError(
      "conflict",
      "CPs of a destination come from its source; POST /v1/admin/cp there",
    );
  });
  return app;
}

/**
 * Starts a destination appliance: opens its store in mirror mode, serves the
 * replication and read API, and on promotion turns into a source on the same
 * port (same store, client writes accepted, CP scheduler running).
 *
 * @module
 */
import { type ApplianceHandle, openAppliance } from "../appliance/open.ts";
import type { DestConfig } from "../cli/args.ts";
import { RefsyncError } from "../errors/mod.ts";
import { createClientApp } from "../http/client-app.ts";
import { listen, type Serve, type Server } from "../http/serve.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Random } from "../runtime/random.ts";
import type { FileSystem } from "../storage/fs/file-ops.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { ApplianceMetrics } from "../metrics/appliance.ts";
import { newWireStats } from "../protocol/cp-sync/stats.ts";
import { type ApplianceS3, startApplianceS3 } from "../s3/server.ts";
import { CpScheduler } from "../storage/objects/cp-scheduler.ts";
import { createDestApp } from "./app.ts";
import { LogStreamServer } from "./log-stream-server.ts";

/** A running destination. */
export type DestHandle = ApplianceHandle;

/** What a destination is started with besides its configuration. */
export interface DestOptions {
  /** Where its events go (default: the root logger); lines get `role: "destination"`. */
  logger?: Logger;
  /** The simulator's disk, clock, randomness, network; real ones by default. */
  fileOps?: FileSystem;
  clock?: Clock;
  random?: Random;
  /** How the app is served (default: {@link listen}). */
  serve?: Serve;
}

/**
 * Starts a destination appliance with the pair token `config.token`, or
 * without one the token kept in `DATA/pair-token` (generated there on the
 * first start, once the directory is known to be ours). Fails at once when
 * another process holds its data directory, the directory holds a source's
 * data (a promoted destination is a source), or the port is taken.
 *
 * @example
 * ```ts
 * import { parseDestArgs } from "../cli/args.ts";
 * const config = parseDestArgs(["--data", await Deno.makeTempDir()]);
 * const dest = await startDest({ ...config, port: 0, token: "secret" });
 * await dest.close();
 * ```
 */
export async function startDest(
  config: DestConfig,
  options: DestOptions = {},
): Promise<DestHandle> {
  const log = (options.logger ?? rootLogger()).child({ role: "destination" });
  const wire = newWireStats();
  const metrics = new ApplianceMetrics({
    // Scraped only once the server runs, so `store` is set by then.
    mirrorState: () => (store.isMirror ? "destination" : "local"),
    lag: () => ({ records: 0, bytes: 0, seconds: 0 }), // it forwards no log of its own
    wire: () => wire,
  });
  const { store, token, tokenGenerated } = await openAppliance(config, log, {
    mirror: true,
    rejoin: config.rejoin === true,
    ...metrics.storeHooks(options.fileOps),
    clock: options.clock,
    random: options.random,
  });
  let scheduler: CpScheduler | null = null;
  let promoting: Promise<{ cp: number; digest: string }> | null = null;
  const promote = () => {
    promoting ??= (async () => {
      await store.promote();
      const source = createClientApp({
        store,
        token,
        clientToken: config.clientToken,
        maxObjectBytes: config.maxObjectBytes,
        wire: () => null,
        role: "source (promoted)",
        bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
        metrics,
        clock: options.clock,
        logger: log,
      });
      // Replication calls still reach the destination app: its /v1/repl/state tells a
      // returning old source it was replaced (no split brain); the rest answer 409.
      handler = (req, info) =>
        new URL(req.url).pathname.startsWith("/v1/repl/")
          ? app.fetch(req, info)
          : source.fetch(req, info);
      scheduler = new CpScheduler(store, config.cpIntervalMs, options.clock);
      scheduler.start();
      return store.digest();
    })().catch((e) => {
      // A refused promotion (a catch-up recorded meanwhile) changed nothing: a later one may go.
      promoting = null;
      throw e;
    });
    return promoting;
  };
  const app = createDestApp({
    store,
    token,
    clientToken: config.clientToken,
    wire,
    promote,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
    metrics,
    clock: options.clock,
    logger: log,
    logStreamPort: () => stream?.port ?? null,
  });
  // `info` becomes the Hono env: the auth checks log the peer address from it.
  let handler: Deno.ServeHandler = app.fetch;
  let server: Server | null = null;
  let stream: LogStreamServer | null = null;
  let s3: ApplianceS3 | null;
  try {
    server = (options.serve ?? listen)(config.host, config.port, (req, info) => handler(req, info));
    // The simulator's network (options.serve) has no TCP: its batches go as HTTP requests.
    const replPort = config.replPort === undefined ? 0 : config.replPort;
    if (replPort !== null && options.serve === undefined) {
      stream = LogStreamServer.listen({
        host: config.host,
        port: replPort,
        token: () => token,
        handler: (req, info) => handler(req, info),
        bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
        onRequest: () => wire.logStreamBatches++,
        logger: log,
      });
    }
    // Like the read API: the last committed CP until a promotion makes this a source.
    s3 = await startApplianceS3(config.s3, {
      host: config.host,
      dataDir: config.data,
      store,
      maxObjectBytes: config.maxObjectBytes,
      bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
      admitWrite: () =>
        store.isMirror
          ? Promise.reject(
            new RefsyncError(
              "forbidden",
              "This is a destination: it serves reads of its last committed CP; write to the source",
            ),
          )
          : Promise.resolve(),
      metrics,
      logger: log,
    });
  } catch (e) {
    await stream?.close();
    await server?.shutdown();
    await store.close();
    throw e;
  }
  const port = server.addr.port;
  const url = `http://${config.host}:${port}`;
  log.info("appliance.started", {
    data: config.data,
    url,
    pid: Deno.pid,
    logStreamPort: stream?.port ?? null,
  });
  return {
    url,
    port,
    token,
    tokenGenerated,
    store,
    s3,
    logStreamPort: stream?.port ?? null,
    async close() {
      await promoting?.catch(() => {});
      await (scheduler as CpScheduler | null)?.stop();
      await s3?.close();
      await stream?.close();
      await server.shutdown();
      await store.close();
      log.info("appliance.stopped", { data: config.data });
    },
  };
}

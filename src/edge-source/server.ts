/**
 * Starts a source appliance: opens its store (recovering from the log), wires
 * the mirror when a destination is configured, serves the HTTP API, runs the
 * CP scheduler.
 *
 * @module
 */
import { type ApplianceHandle, openAppliance } from "../appliance/open.ts";
import type { SourceConfig } from "../cli/args.ts";
import { createClientApp } from "../http/client-app.ts";
import { listen, type Serve, type Server } from "../http/serve.ts";
import type { Clock } from "../runtime/clock.ts";
import type { Random } from "../runtime/random.ts";
import type { FileSystem } from "../storage/fs/file-ops.ts";
import type { ReplicaClient } from "./mirror/replica-client.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { ApplianceMetrics } from "../metrics/appliance.ts";
import { newWireStats, type WireStats } from "../protocol/cp-sync/stats.ts";
import { type ApplianceS3, startApplianceS3 } from "../s3/server.ts";
import { CpScheduler } from "../storage/objects/cp-scheduler.ts";
import { Mirror } from "./mirror/mirror.ts";
import { Verifier } from "./mirror/verify.ts";
import { registerVerifyRoute } from "./verify-route.ts";

/** A running source. */
export type SourceHandle = ApplianceHandle;

/** What a source is started with besides its configuration. */
export interface SourceOptions {
  /** Where its events go (default: the root logger); lines get `role: "source"`. */
  logger?: Logger;
  /** The simulator's disk, clock, randomness, network; real ones by default. */
  fileOps?: FileSystem;
  clock?: Clock;
  random?: Random;
  /** How the app is served (default: {@link listen}). */
  serve?: Serve;
  /** How the mirror reaches `config.dest` (default: HTTP), counting what it sends into `wire`. */
  replicaClient?: (url: string, token: string, wire: WireStats, random?: Random) => ReplicaClient;
}

/**
 * Starts a source appliance with the pair token `config.token` (which its
 * admin calls need, and its destination when it has one), or without one the
 * token kept in `DATA/pair-token` (generated there on the first start, once
 * the directory is known to be ours). Fails at once when another process
 * holds its data directory, the directory holds a destination's data, or the
 * port is taken.
 *
 * @example
 * ```ts
 * import { parseSourceArgs } from "../cli/args.ts";
 * const config = parseSourceArgs(["--data", await Deno.makeTempDir()]);
 * const source = await startSource({ ...config, port: 0, token: "secret" });
 * console.log(source.url);
 * await source.close();
 * ```
 */
export async function startSource(
  config: SourceConfig,
  options: SourceOptions = {},
): Promise<SourceHandle> {
  const log = (options.logger ?? rootLogger()).child({ role: "source" });
  const mirror = config.dest === null ? null : new Mirror({
    url: config.dest,
    token: config.token!, // --dest needs --token (args.ts)
    syncTimeoutMs: config.syncTimeoutMs,
    policy: config.syncPolicy,
    mode: config.cpSync,
    quarantineDir: `${config.data}/quarantine`,
    destLogPort: config.destLogPort,
    client: options.replicaClient &&
      ((wire) => options.replicaClient!(config.dest!, config.token!, wire, options.random)),
    random: options.random,
    clock: options.clock,
    logger: log, // its lines carry `role` like every other line of the source
  });
  const noWire = newWireStats();
  const metrics = new ApplianceMetrics({
    mirrorState: () => mirror?.state ?? "local",
    lag: () => mirror?.lag ?? { records: 0, bytes: 0, seconds: 0 },
    wire: () => mirror?.wire ?? noWire,
  });
  const { store, token, tokenGenerated } = await openAppliance(config, log, {
    ...metrics.storeHooks(options.fileOps),
    clock: options.clock,
    random: options.random,
    ...mirror?.hooks,
  });
  mirror?.attach(store);
  // The verify talks to the destination through the mirror's client.
  const verifier = mirror === null ? null : new Verifier({
    store,
    client: mirror.client,
    intervalMs: config.verifyIntervalMs ?? 0,
    logger: log,
    clock: options.clock,
  });
  const app = createClientApp({
    store,
    token,
    clientToken: config.clientToken,
    maxObjectBytes: config.maxObjectBytes,
    wire: () => mirror?.wire ?? null,
    mirrorStats: () => {
      if (mirror === null) return { mirror: null };
      const stats = mirror.stats();
      return { mirror: { ...stats.mirror as object, verify: verifier?.last ?? null } };
    },
    admitWrite: mirror ? () => mirror.admitWrite() : undefined,
    mirror: mirror !== null,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
    metrics,
    clock: options.clock,
    logger: log,
  });
  registerVerifyRoute(app, verifier);
  let server: Server | null = null;
  let s3: ApplianceS3 | null;
  try {
    server = (options.serve ?? listen)(config.host, config.port, app.fetch);
    s3 = await startApplianceS3(config.s3, {
      host: config.host,
      dataDir: config.data,
      store,
      maxObjectBytes: config.maxObjectBytes,
      bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
      admitWrite: mirror ? () => mirror.admitWrite() : () => Promise.resolve(),
      mirror: mirror !== null,
      metrics,
      logger: log,
    });
  } catch (e) {
    await server?.shutdown();
    await mirror?.close();
    await store.close();
    throw e;
  }
  const scheduler = new CpScheduler(store, config.cpIntervalMs, options.clock);
  scheduler.start();
  verifier?.start();
  const port = server.addr.port;
  const url = `http://${config.host}:${port}`;
  log.info("appliance.started", { data: config.data, url, dest: config.dest, pid: Deno.pid });
  return {
    url,
    port,
    token,
    tokenGenerated,
    store,
    s3,
    async close() {
      await verifier?.stop();
      await scheduler.stop();
      await s3?.close();
      await server.shutdown();
      await mirror?.close();
      await store.close();
      log.info("appliance.stopped", { data: config.data });
    },
  };
}

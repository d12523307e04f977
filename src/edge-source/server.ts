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
import { listen } from "../http/serve.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { CpScheduler } from "../storage/objects/cp-scheduler.ts";
import { Mirror } from "./mirror/mirror.ts";

/** A running source. */
export type SourceHandle = ApplianceHandle;

/** What a source is started with besides its configuration. */
export interface SourceOptions {
  /** Where its events go (default: the root logger); lines get `role: "source"`. */
  logger?: Logger;
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
    mode: config.cpSync,
    quarantineDir: `${config.data}/quarantine`,
  });
  const { store, token, tokenGenerated } = await openAppliance(config, log, mirror?.hooks ?? {});
  mirror?.attach(store);
  const app = createClientApp({
    store,
    token,
    clientToken: config.clientToken,
    maxObjectBytes: config.maxObjectBytes,
    wire: () => mirror?.wire ?? null,
    mirrorStats: () => mirror?.stats() ?? { mirror: null },
    admitWrite: mirror ? () => mirror.admitWrite() : undefined,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = listen(config.host, config.port, app.fetch);
  } catch (e) {
    await mirror?.close();
    await store.close();
    throw e;
  }
  const scheduler = new CpScheduler(store, config.cpIntervalMs);
  scheduler.start();
  const port = server.addr.port;
  const url = `http://${config.host}:${port}`;
  log.info("appliance.started", { data: config.data, url, dest: config.dest, pid: Deno.pid });
  return {
    url,
    port,
    token,
    tokenGenerated,
    store,
    async close() {
      await scheduler.stop();
      await server.shutdown();
      await mirror?.close();
      await store.close();
      log.info("appliance.stopped", { data: config.data });
    },
  };
}

/**
 * Starts a source appliance: opens its store (recovering from the log), wires
 * the mirror when a destination is configured, serves the HTTP API, runs the
 * CP scheduler.
 *
 * @module
 */
import type { SourceConfig } from "../cli/args.ts";
import { listen } from "../http/serve.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { ObjectStore } from "../storage/objects/store.ts";
import { createSourceApp } from "./app.ts";
import { CpScheduler } from "./cp-scheduler.ts";
import { Mirror } from "./mirror/mirror.ts";

/** A running source. */
export interface SourceHandle {
  url: string;
  port: number;
  store: ObjectStore;
  close(): Promise<void>;
}

/** What a source is started with besides its configuration. */
export interface SourceOptions {
  /** Where its events go (default: the root logger); lines get `role: "source"`. */
  logger?: Logger;
}

/**
 * Starts a source appliance. Fails at once when another process holds its
 * data directory, the directory holds a destination's data, or the port is
 * taken.
 *
 * @example
 * ```ts
 * const source = await startSource({ ...config, port: 0 });
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
    token: config.token!,
    syncTimeoutMs: config.syncTimeoutMs,
    mode: config.cpSync,
  });
  const store = await ObjectStore.open(config.data, {
    cpDirtyBytes: config.cpDirtyBytes,
    maxObjectBytes: config.maxObjectBytes,
    logger: log,
    ...mirror?.hooks,
  });
  mirror?.attach(store);
  const app = createSourceApp({
    store,
    maxObjectBytes: config.maxObjectBytes,
    wire: () => mirror?.wire ?? null,
    mirrorStats: () => mirror?.stats() ?? { mirror: null },
    refuseWrites: () => mirror?.refusal() ?? null,
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

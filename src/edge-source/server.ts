/**
 * Starts a source appliance: opens its store (recovering from the log), wires
 * the mirror when a destination is configured, serves the HTTP API, runs the
 * CP scheduler.
 *
 * @module
 */
import type { SourceConfig } from "../cli/args.ts";
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

/**
 * Starts a source appliance. `config.token` must be set: the pair token, which
 * its admin calls need (and its destination, when it has one).
 *
 * @example
 * ```ts
 * const source = await startSource({ ...config, port: 0, token: "secret" });
 * console.log(source.url);
 * await source.close();
 * ```
 */
export async function startSource(
  config: SourceConfig & { token: string },
): Promise<SourceHandle> {
  const mirror = config.dest === null ? null : new Mirror({
    url: config.dest,
    token: config.token,
    syncTimeoutMs: config.syncTimeoutMs,
    mode: config.cpSync,
    quarantineDir: `${config.data}/quarantine`,
  });
  const store = await ObjectStore.open(config.data, {
    cpDirtyBytes: config.cpDirtyBytes,
    maxObjectBytes: config.maxObjectBytes,
    readIdleMs: config.bodyIdleTimeoutMs,
    spaceReserve: config.spaceReserve,
    ...mirror?.hooks,
  });
  mirror?.attach(store);
  const app = createSourceApp({
    store,
    token: config.token,
    clientToken: config.clientToken,
    maxObjectBytes: config.maxObjectBytes,
    wire: () => mirror?.wire ?? null,
    mirrorStats: () => mirror?.stats() ?? { mirror: null },
    admitWrite: mirror ? () => mirror.admitWrite() : undefined,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  const scheduler = new CpScheduler(store, config.cpIntervalMs);
  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    app.fetch,
  );
  scheduler.start();
  const port = server.addr.port;
  return {
    url: `http://${config.host}:${port}`,
    port,
    store,
    async close() {
      await scheduler.stop();
      await server.shutdown();
      await mirror?.close();
      await store.close();
    },
  };
}

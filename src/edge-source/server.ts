/**
 * Starts a source appliance: opens its store (recovering from the log), wires
 * the mirror when a destination is configured, serves the HTTP API, runs the
 * CP scheduler.
 *
 * @module
 */
import type { SourceConfig } from "../cli/args.ts";
import { type ApplianceS3, startApplianceS3 } from "../s3/server.ts";
import { ObjectStore } from "../storage/objects/store.ts";
import { createSourceApp } from "./app.ts";
import { CpScheduler } from "./cp-scheduler.ts";
import { Mirror } from "./mirror/mirror.ts";

/** A running source. */
export interface SourceHandle {
  url: string;
  port: number;
  store: ObjectStore;
  /** The S3 face (`--s3-port`), or null. */
  s3: ApplianceS3 | null;
  close(): Promise<void>;
}

/**
 * Starts a source appliance.
 *
 * @example
 * ```ts
 * const source = await startSource({ ...config, port: 0 });
 * console.log(source.url);
 * await source.close();
 * ```
 */
export async function startSource(config: SourceConfig): Promise<SourceHandle> {
  const mirror = config.dest === null ? null : new Mirror({
    url: config.dest,
    token: config.token!,
    syncTimeoutMs: config.syncTimeoutMs,
    mode: config.cpSync,
  });
  const store = await ObjectStore.open(config.data, {
    cpDirtyBytes: config.cpDirtyBytes,
    maxObjectBytes: config.maxObjectBytes,
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
  const scheduler = new CpScheduler(store, config.cpIntervalMs);
  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    app.fetch,
  );
  scheduler.start();
  const s3 = await startApplianceS3(config.s3, {
    host: config.host,
    dataDir: config.data,
    store,
    maxObjectBytes: config.maxObjectBytes,
    refuseWrites: () => mirror?.refusal() ?? null,
  });
  const port = server.addr.port;
  return {
    url: `http://${config.host}:${port}`,
    port,
    store,
    s3,
    async close() {
      await scheduler.stop();
      await s3?.close();
      await server.shutdown();
      await mirror?.close();
      await store.close();
    },
  };
}

/**
 * Starts a destination appliance: opens its store in mirror mode, serves the
 * replication and read API, and on promotion turns into a source on the same
 * port (same store, client writes accepted, CP scheduler running).
 *
 * @module
 */
import type { DestConfig } from "../cli/args.ts";
import { newWireStats } from "../protocol/cp-sync/stats.ts";
import { ObjectStore } from "../storage/objects/store.ts";
import { createSourceApp } from "../edge-source/app.ts";
import { CpScheduler } from "../edge-source/cp-scheduler.ts";
import { createDestApp } from "./app.ts";

/** A running destination. */
export interface DestHandle {
  url: string;
  port: number;
  token: string;
  store: ObjectStore;
  close(): Promise<void>;
}

/**
 * Starts a destination appliance. `config.token` must be set (the pair token).
 *
 * @example
 * ```ts
 * const dest = await startDest({ ...config, port: 0, token: "secret" });
 * await dest.close();
 * ```
 */
export async function startDest(config: DestConfig & { token: string }): Promise<DestHandle> {
  const store = await ObjectStore.open(config.data, {
    cpDirtyBytes: config.cpDirtyBytes,
    maxObjectBytes: config.maxObjectBytes,
    readIdleMs: config.bodyIdleTimeoutMs,
    spaceReserve: config.spaceReserve,
    mirror: true,
  });
  const wire = newWireStats();
  let scheduler: CpScheduler | null = null;
  let promoting: Promise<{ cp: number; digest: string }> | null = null;
  const promote = () => {
    promoting ??= (async () => {
      await store.promote();
      const source = createSourceApp({
        store,
        token: config.token,
        clientToken: config.clientToken,
        maxObjectBytes: config.maxObjectBytes,
        wire: () => null,
        role: "source (promoted)",
        bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
      });
      // Replication calls still reach the destination app: its /v1/repl/state tells a
      // returning old source it was replaced (no split brain); the rest answer 409.
      handler = (req, info) =>
        new URL(req.url).pathname.startsWith("/v1/repl/")
          ? app.fetch(req, info)
          : source.fetch(req, info);
      scheduler = new CpScheduler(store, config.cpIntervalMs);
      scheduler.start();
      return store.digest();
    })();
    return promoting;
  };
  const app = createDestApp({
    store,
    token: config.token,
    clientToken: config.clientToken,
    wire,
    promote,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  // `info` becomes the Hono env: the auth checks log the peer address from it.
  let handler: Deno.ServeHandler = app.fetch;
  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    (req, info) => handler(req, info),
  );
  const port = server.addr.port;
  return {
    url: `http://${config.host}:${port}`,
    port,
    token: config.token,
    store,
    async close() {
      await promoting?.catch(() => {});
      await (scheduler as CpScheduler | null)?.stop();
      await server.shutdown();
      await store.close();
    },
  };
}

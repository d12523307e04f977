/**
 * Starts a destination appliance: opens its store in mirror mode, serves the
 * replication and read API, and on promotion turns into a source on the same
 * port (same store, client writes accepted, CP scheduler running).
 *
 * @module
 */
import { type ApplianceHandle, openAppliance } from "../appliance/open.ts";
import type { DestConfig } from "../cli/args.ts";
import { createClientApp } from "../http/client-app.ts";
import { listen } from "../http/serve.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import { newWireStats } from "../protocol/cp-sync/stats.ts";
import { CpScheduler } from "../storage/objects/cp-scheduler.ts";
import { createDestApp } from "./app.ts";

/** A running destination. */
export type DestHandle = ApplianceHandle;

/** What a destination is started with besides its configuration. */
export interface DestOptions {
  /** Where its events go (default: the root logger); lines get `role: "destination"`. */
  logger?: Logger;
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
  const { store, token, tokenGenerated } = await openAppliance(config, log, { mirror: true });
  const wire = newWireStats();
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
    token,
    clientToken: config.clientToken,
    wire,
    promote,
    bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
  });
  // `info` becomes the Hono env: the auth checks log the peer address from it.
  let handler: Deno.ServeHandler = app.fetch;
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = listen(config.host, config.port, (req, info) => handler(req, info));
  } catch (e) {
    await store.close();
    throw e;
  }
  const port = server.addr.port;
  const url = `http://${config.host}:${port}`;
  log.info("appliance.started", { data: config.data, url, pid: Deno.pid });
  return {
    url,
    port,
    token,
    tokenGenerated,
    store,
    async close() {
      await promoting?.catch(() => {});
      await (scheduler as CpScheduler | null)?.stop();
      await server.shutdown();
      await store.close();
      log.info("appliance.stopped", { data: config.data });
    },
  };
}

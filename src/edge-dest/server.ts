/**
 * Starts a destination appliance: opens its store in mirror mode, serves the
 * replication and read API, and on promotion turns into a source on the same
 * port (same store, client writes accepted, CP scheduler running).
 *
 * @module
 */
import type { DestConfig } from "../cli/args.ts";
import { newWireStats } from "../protocol/cp-sync/stats.ts";
import { type ApplianceS3, startApplianceS3 } from "../s3/server.ts";
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
  /** The S3 face (`--s3-port`), or null. */
  s3: ApplianceS3 | null;
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
        maxObjectBytes: config.maxObjectBytes,
        wire: () => null,
        role: "source (promoted)",
      });
      // Replication calls still reach the destination app: its /v1/repl/state tells a
      // returning old source it was replaced (no split brain); the rest answer 409.
      handler = (req) =>
        new URL(req.url).pathname.startsWith("/v1/repl/") ? app.fetch(req) : source.fetch(req);
      scheduler = new CpScheduler(store, config.cpIntervalMs);
      scheduler.start();
      return store.digest();
    })();
    return promoting;
  };
  const app = createDestApp({ store, token: config.token, wire, promote });
  let handler: (req: Request) => Response | Promise<Response> = app.fetch;
  const server = Deno.serve(
    { hostname: config.host, port: config.port, onListen: () => {} },
    (req) => handler(req),
  );
  // Like the read API: the last committed CP until a promotion makes this a source.
  const s3 = await startApplianceS3(config.s3, {
    host: config.host,
    dataDir: config.data,
    store,
    maxObjectBytes: config.maxObjectBytes,
    refuseWrites: () =>
      store.isMirror
        ? "This is a destination: it serves reads of its last committed CP; write to the source"
        : null,
  });
  const port = server.addr.port;
  return {
    url: `http://${config.host}:${port}`,
    port,
    token: config.token,
    store,
    s3,
    async close() {
      await promoting?.catch(() => {});
      await (scheduler as CpScheduler | null)?.stop();
      await s3?.close();
      await server.shutdown();
      await store.close();
    },
  };
}

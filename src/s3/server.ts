/**
 * Serves the S3 face of an appliance on its own port, and sweeps expired
 * multipart uploads while the appliance takes writes.
 *
 * @module
 */
import { DEFAULTS, type S3Flags } from "../cli/args.ts";
import { listen } from "../http/serve.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import type { ClientMetrics } from "../metrics/appliance.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { createS3Handler } from "./app.ts";
import { s3Credentials } from "./credentials.ts";
import { UploadSweeper } from "./multipart.ts";
import type { Credentials } from "./sigv4.ts";

/** Uploads and parts one sweep looks at. */
const SWEEP_BUDGET = 1000;

/** How to serve S3. */
export interface S3ServerOptions {
  host: string;
  port: number;
  store: ObjectStore;
  maxObjectBytes: number;
  credentials: Credentials;
  /** Resolves when a write may be logged now (see {@link S3Context.admitWrite}). */
  admitWrite: () => Promise<void>;
  /** A destination mirrors this source: acknowledged writes carry `Refsync-Mirror`. */
  mirror?: boolean;
  /** Unfinished uploads older than this are dropped (default 1 day). */
  uploadExpiryMs?: number;
  /** Where requests and object bytes are counted (`/metrics` of the appliance). */
  metrics?: ClientMetrics;
  /** --body-idle-timeout (ms; default 30 s). */
  bodyIdleTimeoutMs?: number;
  logger?: Logger;
}

/** A running S3 server. */
export interface S3Server {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts serving S3 for `opts.store`.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * import type { Credentials } from "./sigv4.ts";
 * declare const store: ObjectStore;
 * declare const credentials: Credentials;
 * const s3 = startS3Server({ host: "127.0.0.1", port: 9000, store, maxObjectBytes: 5 << 30,
 *   credentials, admitWrite: () => Promise.resolve() });
 * await s3.close();
 * ```
 */
export function startS3Server(opts: S3ServerOptions): S3Server {
  const logger = opts.logger ?? rootLogger();
  const handler = createS3Handler({
    store: opts.store,
    maxObjectBytes: opts.maxObjectBytes,
    admitWrite: opts.admitWrite,
    mirror: opts.mirror,
    metrics: opts.metrics,
    bodyIdleTimeoutMs: opts.bodyIdleTimeoutMs,
    logger,
  }, opts.credentials);
  const server = listen(opts.host, opts.port, handler);
  const expiry = opts.uploadExpiryMs ?? DEFAULTS.s3UploadExpiryMs;
  const sweeper = new UploadSweeper(opts.store, expiry);
  let sweeping: Promise<void> | null = null;
  const timer = setInterval(() => {
    // Only a source that takes writes deletes expired uploads.
    if (sweeping || opts.store.isMirror || opts.store.fenced !== null) return;
    sweeping = sweeper.sweep(SWEEP_BUDGET)
      .then((n) => {
        if (n > 0) logger.info("s3.uploads_expired", { deleted: n });
      })
      .catch((e) => logger.warn("s3.sweep_failed", { cause: String(e) }))
      .finally(() => (sweeping = null));
  }, Math.max(1000, Math.min(60_000, expiry / 4)));
  Deno.unrefTimer(timer);
  const port = server.addr.port;
  return {
    url: `http://${opts.host}:${port}`,
    port,
    async close() {
      clearInterval(timer);
      await sweeping;
      await server.shutdown();
    },
  };
}

/** An appliance's S3 server, with the credentials it takes. */
export interface ApplianceS3 extends S3Server {
  credentials: Credentials;
  /** True when the credentials were generated now (print them once). */
  generated: boolean;
}

/**
 * The S3 face of an appliance as its flags ask: null without `--s3-port`,
 * else a server with the given or kept (or newly generated) credentials.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * import type { S3Flags } from "../cli/args.ts";
 * declare const config: { s3: S3Flags };
 * declare const store: ObjectStore;
 * const [host, dataDir, maxObjectBytes] = ["127.0.0.1", "data", 5 << 30];
 * const admitWrite = () => Promise.resolve();
 * const s3 = await startApplianceS3(config.s3, { host, dataDir, store, maxObjectBytes, admitWrite });
 * ```
 */
export async function startApplianceS3(
  flags: S3Flags,
  opts: Omit<S3ServerOptions, "port" | "credentials"> & { dataDir: string },
): Promise<ApplianceS3 | null> {
  if (flags.port === null) return null;
  const { credentials, generated } = await s3Credentials(opts.dataDir, flags);
  const server = startS3Server({
    ...opts,
    port: flags.port,
    credentials,
    uploadExpiryMs: flags.uploadExpiryMs,
  });
  return { ...server, credentials, generated };
}

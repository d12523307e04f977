/**
 * What both appliances do first: open the store in their data directory
 * (recovering it) and settle the pair token, the given one or the one kept
 * in `DATA/pair-token` (generated there on the first start, once the
 * directory is known to be ours). And the handle a started appliance is.
 *
 * @example
 * ```ts
 * import { openAppliance } from "./open.ts";
 * import { rootLogger } from "../logging/mod.ts";
 *
 * const data = await Deno.makeTempDir();
 * const config = { data, token: null, cpDirtyBytes: 64 << 20, maxObjectBytes: 1 << 30, bodyIdleTimeoutMs: 30_000, spaceReserve: 8 << 20 };
 * const { store, token, tokenGenerated } = await openAppliance(config, rootLogger(), {});
 * console.log(token.length, tokenGenerated); // 32 true
 * await store.close();
 * ```
 *
 * @module
 */
import type { Logger } from "../logging/mod.ts";
import { storedToken } from "../protocol/auth/mod.ts";
import type { ApplianceS3 } from "../s3/server.ts";
import { ObjectStore } from "../storage/objects/store.ts";
import type { StoreOptions } from "../storage/objects/types.ts";

/** A running appliance. */
export interface ApplianceHandle {
  url: string;
  port: number;
  /** The pair token its admin calls need. */
  token: string;
  /** True when this start generated the token (it is shown once, then only kept in DATA/pair-token). */
  tokenGenerated: boolean;
  store: ObjectStore;
  /** The S3 face (`--s3-port`), or null. */
  s3: ApplianceS3 | null;
  /** A destination's log stream port (`--repl-port`); absent or null: none. */
  logStreamPort?: number | null;
  close(): Promise<void>;
}

/** The settings both appliances open their store and token with (of SourceConfig / DestConfig). */
export interface ApplianceConfig {
  data: string;
  token: string | null;
  cpDirtyBytes: number;
  maxObjectBytes: number;
  bodyIdleTimeoutMs: number;
  spaceReserve: number;
}

/**
 * Opens the store of `config.data` with `extra` options (mirror mode and
 * hooks) and settles the pair token; the store is closed again when the
 * token cannot be had.
 */
export async function openAppliance(
  config: ApplianceConfig,
  log: Logger,
  extra: Partial<StoreOptions>,
): Promise<{ store: ObjectStore; token: string; tokenGenerated: boolean }> {
  const store = await ObjectStore.open(config.data, {
    cpDirtyBytes: config.cpDirtyBytes,
    maxObjectBytes: config.maxObjectBytes,
    readIdleMs: config.bodyIdleTimeoutMs,
    spaceReserve: config.spaceReserve,
    logger: log,
    ...extra,
  });
  let tokenGenerated = false;
  try {
    const token = config.token ?? await storedToken(config.data, (path) => {
      tokenGenerated = true;
      log.info("token.generated", { path });
    });
    return { store, token, tokenGenerated };
  } catch (e) {
    await store.close();
    throw e;
  }
}

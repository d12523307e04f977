/**
 * `GET /v1/repl/state`: an appliance's replication state (the handshake
 * answer, {@link DestState}), served by both appliances. A destination serves
 * it to its source; a source serves it too, so that an old source pointed at
 * the appliance that was promoted over it, and has since been restarted as a
 * source, learns of the promotion and is fenced (no split brain), instead of
 * reading a 404 as an unreachable destination.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const app = new Hono();
 * registerSourceReplication(app, store, "pair-token");
 * ```
 *
 * @module
 */
import type { Hono } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import type { DestRejoin, DestState } from "../protocol/handshake/mod.ts";
import { LONG_WINDOW_LOG } from "../protocol/link-compress/mod.ts";
import { REF_FORMAT } from "../protocol/log-frame/mod.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { requireToken } from "./auth.ts";

/**
 * The replication state of `store`. `promoted` is true for a source of a
 * pair generation above 1: only a promotion raises it.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const { cp, lastLsn } = replicationState(store);
 * ```
 */
export function replicationState(
  store: ObjectStore,
  logStreamPort: number | null = null,
): DestState {
  const sb = store.superblock;
  const generation = store.pairGeneration;
  return {
    volumeId: sb.volumeId.toHex(),
    pairGeneration: generation,
    cp: sb.cp,
    volumeDigest: sb.volumeDigest.toHex(),
    lsnCovered: sb.lsnCovered,
    firstLsn: store.log.firstLsn,
    // Durable only: a source takes it as acknowledged (a record awaiting its fdatasync is not held).
    lastLsn: store.log.durableLsn,
    promoted: !store.isMirror && generation > 1,
    promotedAtLsn: sb.pairGeneration > 1 ? sb.promotedAtLsn : null,
    catchUp: store.catchUp &&
      {
        baseCp: store.catchUp.baseCp,
        targetCp: store.catchUp.targetCp,
        targetDigest: store.catchUp.targetDigest,
        blocksDone: store.catchUp.blocksDone,
        bytesDone: store.catchUp.bytesDone,
      },
    rejoin: rejoinState(store),
    refFormat: REF_FORMAT,
    linkWindowLog: LONG_WINDOW_LOG,
    logStreamPort,
  };
}

/** What a rejoining destination reports: the CPs it holds besides the committed one. */
function rejoinState(store: ObjectStore): DestRejoin | null {
  const rejoin = store.rejoin;
  if (rejoin === null) return null;
  const prev = store.volume.previousSuperblock;
  const held = prev !== null && prev.cp === store.superblock.cp - 1;
  return {
    fromGeneration: rejoin.fromGeneration,
    previousCp: held ? prev.cp : null,
    previousDigest: held ? prev.volumeDigest.toHex() : null,
  };
}

/**
 * A source's replication routes: the state (pair token), and 409 for every
 * other replication call (a source takes no replication).
 */
export function registerSourceReplication(app: Hono, store: ObjectStore, token: string): void {
  app.use("/v1/repl/*", requireToken(() => token, { kind: "pair" }));
  app.get("/v1/repl/state", (c) => c.json(replicationState(store)));
  app.all("/v1/repl/*", () => {
    throw new RefsyncError(
      "conflict",
      `this appliance is a source (pair generation ${store.pairGeneration}): it takes no replication`,
    );
  });
}

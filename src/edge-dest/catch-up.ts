/**
 * The destination's side of a catch-up (a baseline or a resync) besides the
 * stream itself (`applyCatchUp` in `cp-apply.ts`, served in parts by a
 * `CpSyncSessions`): `POST /v1/repl/catch-up/begin`, which records the
 * catch-up durably before its first block, and the refusals while one is
 * recorded (object reads 503: the image is incomplete).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const app = new Hono();
 * app.use("/v1/objects/*", refuseReadsWhileCatchingUp(store));
 * ```
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import { type CatchUpRecord, readsRefused } from "../storage/objects/catch-up.ts";
import type { ObjectStore } from "../storage/objects/store.ts";

/** The fields of `POST /v1/repl/catch-up/begin`, all required. */
const NUMBERS = ["baseCp", "targetCp", "lsnCovered", "pairGeneration", "totalBytes"] as const;
const HEX = { targetDigest: 64, volumeId: 32 } as const;

/**
 * Records the catch-up a source begins (`body` as JSON): the same one again
 * keeps its progress, another one from the same base starts over.
 */
export function beginCatchUp(store: ObjectStore, body: unknown): CatchUpRecord {
  const b = body as Record<string, unknown> | null;
  const bad = (what: string) =>
    new RefsyncError(
      "bad_request",
      `a catch-up begins with {baseCp, targetCp, targetDigest, lsnCovered, volumeId, ` +
        `pairGeneration, totalBytes}: ${what}`,
    );
  if (b === null || typeof b !== "object") throw bad("no JSON object");
  for (const k of NUMBERS) {
    if (!Number.isSafeInteger(b[k]) || (b[k] as number) < 0) throw bad(`${k} is not a count`);
  }
  for (const [k, n] of Object.entries(HEX)) {
    if (typeof b[k] !== "string" || !new RegExp(`^[0-9a-f]{${n}}$`).test(b[k] as string)) {
      throw bad(`${k} is not ${n} hex digits`);
    }
  }
  if ((b.targetCp as number) <= (b.baseCp as number)) throw bad("targetCp is not above baseCp");
  return store.beginCatchUp({
    baseCp: b.baseCp as number,
    targetCp: b.targetCp as number,
    targetDigest: b.targetDigest as string,
    lsnCovered: b.lsnCovered as number,
    volumeId: b.volumeId as string,
    pairGeneration: b.pairGeneration as number,
    totalBytes: b.totalBytes as number,
  });
}

/** Object reads answer 503 `unavailable` while a catch-up is recorded: the image is incomplete. */
export function refuseReadsWhileCatchingUp(store: ObjectStore): MiddlewareHandler {
  return async (_c, next) => {
    if (store.catchUp !== null) throw readsRefused(store.catchUp);
    await next();
  };
}

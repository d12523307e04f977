/**
 * The online verify of a pair (`POST /v1/admin/verify`, `--verify-interval`):
 * compares one committed CP of both sides block by block by content digest,
 * and with `repair` sends the source's bytes of each mismatch.
 *
 * The CP compared is the destination's committed CP when this source still
 * holds it (its committed CP, or the one before while its blocks are kept):
 * both sides pin it while they list it, so CPs committing meanwhile move no
 * block of it and a pair under load shows no false mismatch. Both lists come
 * in block order and are merged as they stream: memory is one record of each
 * plus one repair batch, whatever the volume's size.
 *
 * A block the source itself finds damaged (it fails its own pointer's check
 * here) is reported in `sourceDamaged` and never sent: a repair only ever
 * copies bytes that match the check both sides' entries carry.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../../storage/objects/store.ts";
 * import type { ReplicaClient } from "./replica-client.ts";
 * declare const store: ObjectStore;
 * declare const client: ReplicaClient;
 * const result = await verifyPair({ store, client, repair: true });
 * console.log(result.cp, result.mismatches, result.repaired);
 * ```
 *
 * @module
 */
import { errorMessage, isError, RefsyncError } from "../../errors/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";
import {
  DIGEST_BYTES,
  type DigestReader,
  type DigestRecord,
  encodeRepair,
  REPAIR_BATCH_BLOCKS,
} from "../../protocol/verify/mod.ts";
import { type Clock, systemClock, type TimerId } from "../../runtime/clock.ts";
import type { BlockDigestList, ObjectStore } from "../../storage/objects/store.ts";
import { endOfSlice } from "../../storage/time-slice.ts";
import type { ReplicaClient } from "./replica-client.ts";

/** Mismatches listed in one answer at most (the count and the repairs cover all). */
export const MAX_REPORTED = 1000;

/** Why a block was reported. */
export type MismatchKind =
  /** Both sides list the block; the destination's bytes differ. */
  | "differs"
  /** The destination's block fails its own pointer's check there. */
  | "damaged"
  /** The destination does not reach the block (it lies under a damaged block there). */
  | "missing"
  /** Only the destination lists the block. */
  | "extra";

/** The answer of one verify. */
export interface VerifyResult {
  cp: number;
  /** Block numbers listed by either side. */
  blocksCompared: number;
  /** The first {@link MAX_REPORTED} blocks that differ, with their object's key when known. */
  mismatches: Array<{ block: number; key?: string; kind: MismatchKind }>;
  /** All mismatches, also those past the listed ones. */
  mismatchCount: number;
  /** Blocks the destination wrote (with `repair`). */
  repaired: number;
  /** Blocks the source itself finds damaged: reported, never sent. */
  sourceDamaged: Array<{ block: number; key?: string }>;
  durationMs: number;
}

/** What a verify needs. */
export interface VerifyOptions {
  store: ObjectStore;
  client: ReplicaClient;
  /** Send the source's bytes of each mismatch. */
  repair: boolean;
  /** Started by `--verify-interval` (logged as such), not by a request. */
  scheduled?: boolean;
  logger?: Logger;
  clock?: Clock;
}

/** Attempts to catch the destination at a CP we hold while CPs commit. */
const ATTEMPTS = 5;

/**
 * Verifies (and with `repair` mends) the pair; logs `verify.finished`.
 * Rejects with `conflict` when no CP is held by both sides (the destination
 * is behind or ahead by more than one CP, or holds another volume), with
 * `unavailable` when the destination cannot be reached or its stream breaks.
 */
export async function verifyPair(opts: VerifyOptions): Promise<VerifyResult> {
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? rootLogger();
  const started = clock.monotonic();
  const { local, remote } = await openBoth(opts);
  let result: VerifyResult;
  try {
    result = await merge(opts, local, remote, clock);
  } finally {
    local.close();
    await remote.cancel();
  }
  result.durationMs = Math.round(clock.monotonic() - started);
  log.info("verify.finished", {
    cp: result.cp,
    blocksCompared: result.blocksCompared,
    mismatches: result.mismatchCount,
    repaired: result.repaired,
    sourceDamaged: result.sourceDamaged.length,
    durationMs: result.durationMs,
    scheduled: opts.scheduled === true,
  });
  return result;
}

/** Our list and the destination's of one CP both hold, ours pinned. */
async function openBoth(
  opts: VerifyOptions,
): Promise<{ local: BlockDigestList; remote: DigestReader }> {
  const { store, client } = opts;
  let why = "";
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const state = await client.state();
    const sb = store.superblock;
    // Before its first CP from us a destination's volume id is its own; CP 0 is empty anyway.
    const ours = state.cp === 0 || state.volumeId === sb.volumeId.toHex();
    if (!ours || state.pairGeneration !== sb.pairGeneration) {
      throw new RefsyncError(
        "conflict",
        "the destination holds another volume or pair generation: there is no CP to compare",
      );
    }
    let local: BlockDigestList;
    try {
      // Pinned before the destination is asked: from here on no block of that CP moves here.
      local = store.openBlockDigests(state.cp);
    } catch (e) {
      if (!isError(e, "conflict")) throw e;
      why = `the destination is at CP ${state.cp}, this source at CP ${sb.cp}`;
      continue;
    }
    try {
      const remote = await client.verifyDigests(state.cp);
      if (remote.header.volumeDigest.toHex() !== local.volumeDigest.toHex()) {
        await remote.cancel();
        throw new RefsyncError(
          "conflict",
          `the destination's CP ${state.cp} has another volume digest than ours`,
        );
      }
      return { local, remote };
    } catch (e) {
      local.close();
      // It committed the next CP meanwhile: ask again.
      if (!isError(e, "conflict") || !/is at CP/.test(e.message)) throw e;
      why = e.message;
    }
  }
  throw new RefsyncError(
    "conflict",
    `no CP held by both sides to compare (${why}); verify once the pair is in sync`,
  );
}

async function merge(
  opts: VerifyOptions,
  local: BlockDigestList,
  remote: DigestReader,
  clock: Clock,
): Promise<VerifyResult> {
  const { store, client } = opts;
  const cp = local.cp;
  const result: VerifyResult = {
    cp,
    blocksCompared: 0,
    mismatches: [],
    mismatchCount: 0,
    repaired: 0,
    sourceDamaged: [],
    durationMs: 0,
  };
  let batch: Array<{ block: number; bytes: Uint8Array }> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const answer = await client.repair(cp, encodeRepair(batch));
    batch = [];
    result.repaired += answer.repaired.length;
    for (const r of answer.refused) {
      (opts.logger ?? rootLogger()).warn("verify.repair_refused", {
        cp,
        block: r.block,
        reason: r.message,
      });
    }
  };
  const mismatch = async (src: DigestRecord | null, kind: MismatchKind, block: number) => {
    result.mismatchCount++;
    if (result.mismatches.length < MAX_REPORTED) result.mismatches.push({ block, kind });
    if (!opts.repair || src === null) return;
    const bytes = store.volume.readBlock(block);
    // Pinned, so these are the bytes listed (and checked) a moment ago; checked again all the same.
    if (blake3(bytes).subarray(0, DIGEST_BYTES).toHex() !== src.digest.toHex()) return;
    batch.push({ block, bytes });
    if (batch.length >= REPAIR_BATCH_BLOCKS) await flush();
  };
  const next = async () => {
    try {
      const r = await remote.records.next();
      return r.done ? null : r.value;
    } catch (e) {
      throw new RefsyncError(
        "unavailable",
        `the destination's digest stream broke off: ${errorMessage(e)}`,
      );
    }
  };
  const ours = local.blocks;
  let a = ours.next();
  let b = await next();
  while (!a.done || b !== null) {
    result.blocksCompared++;
    const src = a.done ? null : a.value;
    if (b === null || (src !== null && src.block < b.block)) {
      // Only we list it: the destination does not reach it (the block above it is damaged
      // there). Nothing to send: the destination could not check it, and mending the block
      // above brings it back (a next verify compares it).
      if (src!.damaged) result.sourceDamaged.push({ block: src!.block });
      else await mismatch(null, "missing", src!.block);
      a = ours.next();
    } else if (src === null || b.block < src.block) {
      await mismatch(null, "extra", b.block);
      b = await next();
    } else {
      if (src.damaged) result.sourceDamaged.push({ block: src.block });
      else if (b.damaged) await mismatch(src, "damaged", src.block);
      else if (b.digest.toHex() !== src.digest.toHex()) await mismatch(src, "differs", src.block);
      a = ours.next();
      b = await next();
    }
    await endOfSlice(clock);
  }
  await flush();
  const keys = local.keysOf([...result.mismatches, ...result.sourceDamaged].map((m) => m.block));
  for (const m of [...result.mismatches, ...result.sourceDamaged]) {
    const key = keys.get(m.block);
    if (key !== undefined) m.key = key;
  }
  return result;
}

/**
 * Runs {@link verifyPair} one at a time (a call made while one runs waits
 * for it), every `intervalMs` when that is above 0, and keeps the last result
 * for the stats (`mirror.verify`).
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../../storage/objects/store.ts";
 * import type { ReplicaClient } from "./replica-client.ts";
 * declare const store: ObjectStore;
 * declare const client: ReplicaClient;
 * const verifier = new Verifier({ store, client, intervalMs: 6 * 3600_000 });
 * verifier.start();
 * await verifier.run(false);
 * await verifier.stop();
 * ```
 */
export class Verifier {
  readonly #opts: Omit<VerifyOptions, "repair"> & { intervalMs: number };
  readonly #clock: Clock;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: TimerId | undefined;
  #stopped = false;
  /** The last result, or the last failure's message. */
  last: VerifyResult | { error: string } | null = null;

  constructor(opts: Omit<VerifyOptions, "repair"> & { intervalMs: number }) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Verifies now (after the one running, if any). */
  run(repair: boolean, scheduled = false): Promise<VerifyResult> {
    const run = this.#chain.then(() => verifyPair({ ...this.#opts, repair, scheduled }));
    this.#chain = run.then(
      (r) => (this.last = r),
      (e) => (this.last = { error: errorMessage(e) }),
    );
    return run;
  }

  /** Schedules a verify every `intervalMs` (nothing when it is 0). */
  start(): void {
    if (this.#opts.intervalMs <= 0 || this.#stopped) return;
    this.#timer = this.#clock.setTimeout(async () => {
      // The result is kept and logged; a failure (the destination away) waits for the next.
      await this.run(false, true).catch((e) =>
        (this.#opts.logger ?? rootLogger()).warn("verify.failed", { cause: errorMessage(e) })
      );
      this.start();
    }, this.#opts.intervalMs);
  }

  /** Stops the schedule and waits for a verify that is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    await this.#chain;
  }
}

/**
 * Helpers of the catch-up tests (baseline, resync): a source filled while it
 * runs alone, and waits on its `mirror.progress`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, spawnSource } from "../support/appliance.ts";
import type { Model } from "../support/model.ts";
import type { Prng } from "../support/prng.ts";
import { adminCp, eventually, putRandomObject, statsOf } from "./pair.ts";

/** `stats().mirror.progress` of a source. */
export interface Progress {
  kind: string;
  baseCp: number;
  targetCp: number;
  done: number;
  total: number;
}

/**
 * Writes `count` objects of `sizeOf()` bytes (`${prefix}${i}`) to a source in
 * `dataDir` running alone, takes a CP and stops it. Resolves with the image:
 * the bytes of their data blocks.
 */
export async function fillAlone(
  dataDir: string,
  token: string,
  model: Model,
  rng: Prng,
  count: number,
  sizeOf: () => number,
  prefix: string,
): Promise<number> {
  let image = 0;
  const alone = await spawnSource(dataDir, ["--token", token]);
  try {
    for (let i = 0; i < count; i++) {
      const size = sizeOf();
      image += Math.ceil(size / 4096) * 4096;
      const put = await putRandomObject(alone.url, model, `${prefix}${i}`, rng.int(2 ** 31), size);
      assert.equal(put.status, 201, put.text);
    }
    await adminCp(alone);
  } finally {
    await alone.stop(5000);
  }
  return image;
}

/** Waits until the source's catch-up is at least `fraction` done; its progress then. */
export function untilDone(src: ApplianceProcess, fraction: number): Promise<Progress> {
  return eventually(`the catch-up reaches ${fraction * 100}%`, async () => {
    const p = (await statsOf(src)).mirror?.progress as Progress | null;
    return p && p.done >= fraction * p.total ? p : undefined;
  }, { ms: 120_000, pauseMs: 20, attempts: 10_000 });
}

/** Waits until the source reports no catch-up any more (its target committed). */
export async function untilCommitted(src: ApplianceProcess, ms = 240_000): Promise<void> {
  await eventually("the catch-up commits", async () => {
    const m = (await statsOf(src)).mirror!;
    return m.progress === null && (m.destinationCp as number) > 0 ? true : undefined;
  }, { ms, pauseMs: 200, attempts: 5_000 });
}

/**
 * Helpers of the catch-up tests (baseline, resync): a source filled while it
 * runs alone, and waits on its `mirror.progress`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, spawnSource, withTempDir } from "../support/appliance.ts";
import { Model } from "../support/model.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
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

/** What a catch-up test starts from: a source's directory filled alone, and its generator. */
export interface FilledSource {
  /** The test's directory: the source's data is in `source/`. */
  dir: string;
  rng: Prng;
  token: string;
  model: Model;
  /** Bytes of the data blocks written ({@link fillAlone}). */
  image: number;
}

/**
 * Runs `fn` in a fresh directory whose `source/` holds `count` objects of
 * `sizeOf(rng)` bytes named `${prefix}${i}`, written by a source alone. Seeded
 * by `testSeed(fallbackSeed)`: a failure prints the seed that replays it.
 */
export function withFilledSource(
  name: string,
  fallbackSeed: number,
  objects: { count: number; sizeOf: (rng: Prng) => number; prefix: string },
  fn: (s: FilledSource) => Promise<void>,
): Promise<void> {
  const seed = testSeed(fallbackSeed);
  return withSeed(seed, `mirror-${name}`, () =>
    withTempDir(`refsync-${name}-`, async (dir) => {
      const rng = new Prng(seed);
      const token = `pair-token-${name}`;
      const model = new Model();
      const { count, sizeOf, prefix } = objects;
      const image = await fillAlone(
        `${dir}/source`,
        token,
        model,
        rng,
        count,
        () => sizeOf(rng),
        prefix,
      );
      await fn({ dir, rng, token, model, image });
    }));
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

/**
 * `aligned` and `duplicate`: whole-object PUTs of 4 KiB to 4 MiB, sizes
 * multiples of 4 KiB (log-uniform in blocks, so small and large objects both
 * count), every key new. Each 4 KiB block's content is xorshift32 seeded by a
 * block id; `aligned` gives every block a fresh id, `duplicate` reuses the id
 * of a block written before (uniformly among all earlier ones) with
 * probability `repeat` (0.75).
 *
 * @module
 */
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { fillXorshift, mixSeed, Rng } from "../lib/prng.ts";
import type { Op, Workload, WorkloadOptions } from "./types.ts";

/** Largest object: 4 MiB = 1024 blocks. */
export const MAX_BLOCKS = 1024;

/** The blocks of one object: the content id of each. */
export interface BlockPlan {
  key: string;
  ids: Uint32Array;
  /** How many of `ids` repeat an earlier block. */
  repeats: number;
}

/** Generates the block plans (separate from the bodies so tests can inspect them). */
export class BlockPlanner {
  #rng: Rng;
  #prefix: string;
  #repeat: number;
  #count = 0;
  #unique = 0;

  constructor(seed: number, prefix: string, repeat: number) {
    this.#rng = new Rng(mixSeed(seed, 0xa11));
    this.#prefix = prefix;
    this.#repeat = repeat;
  }

  /** Distinct block contents handed out so far. */
  get uniqueBlocks(): number {
    return this.#unique;
  }

  next(): BlockPlan {
    const rng = this.#rng;
    const n = rng.logInt(1, MAX_BLOCKS);
    const ids = new Uint32Array(n);
    let repeats = 0;
    for (let i = 0; i < n; i++) {
      if (this.#unique > 0 && this.#repeat > 0 && rng.chance(this.#repeat)) {
        ids[i] = rng.int(0, this.#unique - 1);
        repeats++;
      } else {
        ids[i] = this.#unique++;
      }
    }
    const key = `${this.#prefix}/${String(this.#count++).padStart(8, "0")}`;
    return { key, ids, repeats };
  }
}

/** The bytes of a plan: block i holds xorshift32(mixSeed(seed, ids[i])). */
export function planBody(seed: number, ids: Uint32Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(ids.length * BLOCK_SIZE);
  for (let i = 0; i < ids.length; i++) {
    fillXorshift(out, mixSeed(seed, ids[i]), i * BLOCK_SIZE, BLOCK_SIZE);
  }
  return out;
}

function blockWorkload(
  name: string,
  summary: string,
  repeat: number,
  { seed }: WorkloadOptions,
): Workload {
  const planner = new BlockPlanner(seed, name, repeat);
  const contentSeed = mixSeed(seed, 0xc0);
  return {
    name,
    summary,
    concurrency: 8,
    setup: () => [],
    next(): Op {
      const plan = planner.next();
      return {
        key: plan.key,
        bytes: plan.ids.length * BLOCK_SIZE,
        body: () => planBody(contentSeed, plan.ids),
      };
    },
  };
}

/** `aligned`: unique random content. */
export function aligned(opts: WorkloadOptions): Workload {
  return blockWorkload(
    "aligned",
    "PUT new objects of 4 KiB-4 MiB (multiples of 4 KiB, log-uniform), unique random content",
    0,
    opts,
  );
}

/** `duplicate`: 75% of the blocks repeat content written before. */
export function duplicate(opts: WorkloadOptions): Workload {
  return blockWorkload(
    "duplicate",
    "like aligned, but each 4 KiB block repeats an earlier block's content with probability 0.75",
    0.75,
    opts,
  );
}

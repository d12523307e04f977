/**
 * `small`: 4 KiB PUTs of new keys with unique random content, at concurrency
 * 32: per-request and per-record overheads dominate.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { fillXorshift, mixSeed } from "../lib/prng.ts";
import type { Op, Workload, WorkloadOptions } from "./types.ts";

/** `small`. */
export function small({ seed }: WorkloadOptions): Workload {
  let count = 0;
  return {
    name: "small",
    summary: "PUT new 4 KiB objects, unique random content, concurrency 32",
    concurrency: 32,
    setup: () => [],
    next(): Op {
      const n = count++;
      return {
        key: `small/${String(n).padStart(8, "0")}`,
        bytes: BLOCK_SIZE,
        body: () => {
          const out = new Uint8Array(BLOCK_SIZE);
          fillXorshift(out, mixSeed(seed ^ 0x5a11, n));
          return out;
        },
      };
    },
  };
}

/**
 * `unaligned`: ranged writes (`Content-Range: bytes a-b/*`) at random byte
 * offsets, of log-uniform random lengths from 1 byte to 1 MiB, into a set of
 * 16 MiB objects that the (unmeasured) setup fills with random content first,
 * so that every write lands on live blocks and partial blocks need their base.
 *
 * @module
 */
import { fillXorshift, mixSeed, Rng } from "../lib/prng.ts";
import type { Op, Workload, WorkloadOptions } from "./types.ts";

/** Size of each object. */
export const OBJECT_BYTES = 16 * 2 ** 20;
/** Longest ranged write. */
export const MAX_WRITE = 2 ** 20;
const SETUP_CHUNK = 2 ** 20;

/** Seeded random bytes. */
export function randomBytes(seed: number, n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  fillXorshift(out, seed);
  return out;
}

/** A pull stream of `total` seeded random bytes, one chunk in memory at a time. */
export function randomStream(seed: number, total: number): ReadableStream<Uint8Array<ArrayBuffer>> {
  let sent = 0;
  let chunkNo = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(SETUP_CHUNK, total - sent);
      controller.enqueue(randomBytes(mixSeed(seed, chunkNo++), n));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

/** `unaligned`. `objects` defaults to 16 (4 with `--quick`). */
export function unaligned({ seed, quick }: WorkloadOptions, objects = quick ? 4 : 16): Workload {
  const rng = new Rng(mixSeed(seed, 0x0a1));
  const keys = Array.from({ length: objects }, (_, i) => `unaligned/${String(i).padStart(4, "0")}`);
  let count = 0;
  return {
    name: "unaligned",
    summary:
      `ranged writes at random byte offsets, lengths log-uniform 1 B-1 MiB, into ${objects} ` +
      `objects of 16 MiB (filled by an unmeasured setup)`,
    concurrency: 8,
    setup: () =>
      keys.map((key, i) => ({
        key,
        bytes: OBJECT_BYTES,
        body: () => randomStream(mixSeed(seed, 0x5e7 + i), OBJECT_BYTES),
      })),
    next(): Op {
      const key = keys[rng.int(0, objects - 1)];
      const bytes = rng.logInt(1, MAX_WRITE);
      const offset = rng.int(0, OBJECT_BYTES - bytes);
      const bodySeed = mixSeed(seed, 0x10000 + count++);
      return { key, bytes, offset, body: () => randomBytes(bodySeed, bytes) };
    },
  };
}

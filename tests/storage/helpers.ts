/**
 * Shared helpers of the storage engine tests: temp directories, byte
 * comparison, stream draining, and the reference BLAKE3 (npm:blake3-wasm).
 *
 * @module
 */
import { concatBytes } from "../../src/bytes/mod.ts";
import { firstDifference } from "../support/bytes.ts";
import assert from "node:assert/strict";
import { blake3Hex, etagHex } from "../support/blake3.ts";
export { blake3Hex, etagHex };
import type { BlockDigest, ObjectStore } from "../../src/storage/objects/store.ts";

export { Prng, seeded, testSeed, withSeed } from "../support/prng.ts";

/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "refsync-storage-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts byte equality with a short message (no multi-MiB diff dumps). */
export function assertBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  const at = firstDifference(actual, expected);
  if (at !== -1) {
    assert.fail(
      `${what}: differs at byte ${at} (length ${actual.length}, expected ${expected.length}; ` +
        `got ${actual[at]}, want ${expected[at]})`,
    );
  }
}

/** Reads a stream to the end into one array. */
export async function drain(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return concatBytes(parts);
}

/** A stream of `data` in chunks of `chunk` bytes (pull-based). */
export function bytesStream(data: Uint8Array, chunk = 256 << 10): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= data.length) {
        controller.close();
        return;
      }
      const n = Math.min(chunk, data.length - at);
      controller.enqueue(data.slice(at, at + n));
      at += n;
    },
  }, { highWaterMark: 0 });
}

/**
 * A stream that hands out the first `failAfter` bytes of `data`, then errors
 * with `error` (a client whose upload breaks off).
 */
export function failingStream(
  data: Uint8Array,
  failAfter: number,
  error: Error,
  chunk = 256 << 10,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= failAfter) {
        controller.error(error);
        return;
      }
      const n = Math.min(chunk, failAfter - at);
      controller.enqueue(data.slice(at, at + n));
      at += n;
    },
  }, { highWaterMark: 0 });
}

/** The block digests of committed CP `cp` (default the committed one), each a fresh copy. */
export function digestsOf(
  store: ObjectStore,
  cp = store.superblock.cp,
  window?: number,
): BlockDigest[] {
  const list = store.openBlockDigests(cp, window);
  try {
    return [...list.blocks].map((d) => ({ ...d, digest: d.digest.slice() }));
  } finally {
    list.close();
  }
}

/** The keys of `blocks` in the committed CP of `store`. */
export function keysOf(store: ObjectStore, blocks: number[]): Map<number, string> {
  const list = store.openBlockDigests(store.superblock.cp);
  try {
    return list.keysOf(blocks);
  } finally {
    list.close();
  }
}

/**
 * The random-looking test that keeps the shifted-content search off random
 * and compressed data: exact entropies where they are known, and the
 * verdict on random bytes, zstd output and text.
 *
 * @module
 */
import assert from "node:assert/strict";
import { zstdCompressSync } from "node:zlib";
import { looksRandom, sampledEntropy } from "../../src/bytes/entropy.ts";
import { Prng } from "../../src/runtime/random.ts";
import { text } from "../support/text.ts";

Deno.test("entropy: exact values of known distributions", () => {
  assert.equal(sampledEntropy(new Uint8Array(0)), 0);
  assert.equal(sampledEntropy(new Uint8Array(10_000).fill(7)), 0);
  const two = new Uint8Array(4096).map((_, i) => i % 2);
  assert.equal(sampledEntropy(two), 1);
  const all = new Uint8Array(4096).map((_, i) => i % 256); // each value 16 times
  assert.equal(sampledEntropy(all), 8);
});

Deno.test("entropy: the sample is 4 KiB from the middle", () => {
  // 8 KiB of zeros around a 4 KiB middle holding every value 16 times.
  const b = new Uint8Array(12_288);
  b.set(new Uint8Array(4096).map((_, i) => i % 256), 4096);
  assert.equal(sampledEntropy(b), 8);
});

Deno.test("entropy: random bytes and zstd output look random, text does not", () => {
  const random = new Prng(4).fill(new Uint8Array(1 << 16));
  assert.ok(looksRandom(random));
  const words = text(5, 1 << 20);
  assert.ok(looksRandom(zstdCompressSync(words)), "compressed text");
  assert.ok(!looksRandom(words), `text: ${sampledEntropy(words).toFixed(2)} bits per byte`);
});

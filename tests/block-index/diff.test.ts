import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import { applyDiff, diffBlocks, isZeroBlock } from "../../src/block-index/mod.ts";
import { Prng, seeded } from "../support/prng.ts";

/** Checks the contract of diffBlocks' output for (base, next). */
function checkRanges(base: Uint8Array, next: Uint8Array, ranges: Array<[number, number]>): void {
  let prevEnd = -Infinity;
  const covered = new Uint8Array(BLOCK_SIZE);
  for (const [s, e] of ranges) {
    assert.ok(0 <= s && s < e && e <= BLOCK_SIZE, `range ${s}-${e} in the block`);
    assert.ok(s - prevEnd >= 8, `ranges ${prevEnd}..${s} closer than 8 bytes are merged`);
    assert.ok(base[s] !== next[s] && base[e - 1] !== next[e - 1], "ranges are tight");
    covered.fill(1, s, e);
    prevEnd = e;
  }
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (base[i] !== next[i]) assert.ok(covered[i] === 1, `changed byte ${i} covered`);
  }
  assert.deepEqual(applyDiff(base.slice(), next, ranges), next, "ranges rebuild next");
}

Deno.test(
  "diffBlocks: seeded random edits rebuild the new block exactly",
  seeded(0xd1ff, (seed) => {
    const rng = new Prng(seed);
    for (let trial = 0; trial < 2000; trial++) {
      const base = rng.bytes(BLOCK_SIZE);
      const next = base.slice();
      const edits = rng.int(trial % 10 === 0 ? 200 : 12);
      for (let e = 0; e < edits; e++) {
        const at = rng.int(BLOCK_SIZE);
        const len = Math.min(BLOCK_SIZE - at, 1 + rng.int(rng.int(4) === 0 ? 300 : 20));
        for (let i = at; i < at + len; i++) next[i] = rng.int(4) === 0 ? base[i] : rng.u32() & 0xff;
      }
      checkRanges(base, next, diffBlocks(base, next));
    }
  }),
);

Deno.test("diffBlocks: edge cases", () => {
  const zero = new Uint8Array(BLOCK_SIZE);
  assert.deepEqual(diffBlocks(zero, zero.slice()), []);
  assert.deepEqual(diffBlocks(zero, new Uint8Array(BLOCK_SIZE).fill(1)), [[0, BLOCK_SIZE]]);
  const next = zero.slice();
  next[0] = 1;
  next[4095] = 1;
  assert.deepEqual(diffBlocks(zero, next), [[0, 1], [4095, 4096]]);
  next[10] =
    next[12] =
    next[100] =
    next[107] =
    next[115] =
      1;
  // 100 and 107: gap of 6 (merged); 107 and 115: gap 7 (merged); 1 and 10: gap 9 (kept).
  assert.deepEqual(diffBlocks(zero, next), [[0, 1], [10, 13], [100, 116], [4095, 4096]]);
  const gap8 = zero.slice();
  gap8[15] = gap8[24] = 1; // [15,16) and [24,25): gap of 8, not merged
  assert.deepEqual(diffBlocks(zero, gap8), [[15, 16], [24, 25]]);
  // Alternating bytes: every range merges into one.
  const alt = zero.slice();
  for (let i = 0; i < BLOCK_SIZE; i += 2) alt[i] = 1;
  assert.deepEqual(diffBlocks(zero, alt), [[0, BLOCK_SIZE - 1]]);
  // Worst case for the range count: one changed byte every 9 bytes.
  const sparse = zero.slice();
  for (let i = 0; i < BLOCK_SIZE; i += 9) sparse[i] = 1;
  checkRanges(zero, sparse, diffBlocks(zero, sparse));
  assert.deepEqual(diffBlocks(zero, sparse).length, Math.ceil(BLOCK_SIZE / 9));
  assert.throws(() => diffBlocks(zero, new Uint8Array(10)), TypeError);
});

Deno.test("isZeroBlock", () => {
  const block = new Uint8Array(BLOCK_SIZE);
  assert.ok(isZeroBlock(block));
  for (let i = 0; i < BLOCK_SIZE; i++) {
    block[i] = 1 << (i % 8);
    if (isZeroBlock(block)) assert.ok(false, `byte ${i} set`);
    block[i] = 0;
  }
  assert.ok(isZeroBlock(block));
  assert.throws(() => isZeroBlock(new Uint8Array(4095)), TypeError);
});

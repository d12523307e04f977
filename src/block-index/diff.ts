/**
 * Byte-level diff of two 4 KiB blocks (for DIFF records of metadata blocks) and zero-block
 * detection (ZERO records), both with SIMD compares in wasm.
 *
 * @module
 */

import { BLOCK_SIZE } from "../bytes/mod.ts";
import { sharedKernel } from "../hash/blake3.ts";
import { check } from "../wasm/block-diff.ts";

const { x, mem } = sharedKernel;
const A = x.diffA();
const B = x.diffB();
const OUT = x.diffOut();

function checkBlock(block: Uint8Array, what: string): void {
  check(
    block instanceof Uint8Array && block.length === BLOCK_SIZE,
    `${what}: a block is 4096 bytes`,
  );
}

/**
 * Changed byte ranges between two 4 KiB blocks as [start, end) pairs, ascending; ranges
 * less than 8 bytes apart are merged (the gap bytes are equal in both, so copying them is
 * harmless and fewer ranges encode smaller). Copying those ranges of `next` over `base`
 * rebuilds `next`. Equal blocks give [].
 *
 * @example
 * ```ts
 * const base = new Uint8Array(4096);
 * const next = base.slice();
 * next[10] = 1;
 * next[12] = 1;
 * next[100] = 1;
 * diffBlocks(base, next); // [[10, 13], [100, 101]]
 * ```
 */
export function diffBlocks(base: Uint8Array, next: Uint8Array): Array<[number, number]> {
  checkBlock(base, "diffBlocks");
  checkBlock(next, "diffBlocks");
  const u8 = mem.u8;
  u8.set(base, A);
  u8.set(next, B);
  const n = x.diffBlocks();
  const pairs = new Uint32Array(u8.buffer, OUT, n * 2);
  const ranges: Array<[number, number]> = new Array(n);
  for (let i = 0; i < n; i++) ranges[i] = [pairs[2 * i], pairs[2 * i + 1]];
  return ranges;
}

/**
 * Copies the given ranges of `next` over `base` (in place), the inverse of
 * {@link diffBlocks}. Returns `base`.
 *
 * @example
 * ```ts
 * const base = new Uint8Array(4096);
 * const next = base.slice().fill(1, 100, 200);
 * const rebuilt = applyDiff(base.slice(), next, diffBlocks(base, next)); // equals next
 * ```
 */
export function applyDiff(
  base: Uint8Array,
  next: Uint8Array,
  ranges: ReadonlyArray<readonly [number, number]>,
): Uint8Array {
  for (const [start, end] of ranges) {
    check(0 <= start && start < end && end <= base.length, `applyDiff: bad range ${start}-${end}`);
    base.set(next.subarray(start, end), start);
  }
  return base;
}

/**
 * True when all 4096 bytes are zero.
 *
 * @example
 * ```ts
 * isZeroBlock(new Uint8Array(4096)); // true
 * ```
 */
export function isZeroBlock(block: Uint8Array): boolean {
  checkBlock(block, "isZeroBlock");
  mem.u8.set(block, A);
  return x.isZeroBlock(A) !== 0;
}

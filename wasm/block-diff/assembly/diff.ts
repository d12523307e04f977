// Block diff and zero detection, 16 bytes per SIMD compare.

import { BLOCK_SIZE } from "./constants";
import { DIFF_A, DIFF_B, DIFF_OUT } from "./layout";

/** Ranges closer than this are merged: a range costs 4 bytes on the wire, a gap byte 1. */
const MERGE_GAP: u32 = 8;

/**
 * Changed byte ranges between the blocks at DIFF_A and DIFF_B, written to DIFF_OUT as u32
 * [start, end) pairs in increasing order, gaps < MERGE_GAP merged. Returns the pair count
 * (at most ceil(4096 / (1 + MERGE_GAP)) = 456, so DIFF_OUT's 4 KiB suffices).
 */
export function diffBlocks(): u32 {
  let n: u32 = 0;
  let open = false;
  let start: u32 = 0;
  let end: u32 = 0;
  for (let off: u32 = 0; off < BLOCK_SIZE; off += 16) {
    const a = v128.load(DIFF_A + off);
    const b = v128.load(DIFF_B + off);
    let mask = <u32> i8x16.bitmask(i8x16.ne(a, b)); // bit i = byte off+i differs
    while (mask != 0) {
      const s = ctz(mask);
      const run = ctz(~(mask >> s)); // length of the run of set bits starting at s
      mask &= ~(((1 << run) - 1) << s);
      const rs = off + s;
      const re = rs + run;
      if (open && rs - end < MERGE_GAP) {
        end = re;
      } else {
        if (open) {
          store<u32>(DIFF_OUT + <usize> n * 8, start);
          store<u32>(DIFF_OUT + <usize> n * 8, end, 4);
          n++;
        }
        open = true;
        start = rs;
        end = re;
      }
    }
  }
  if (open) {
    store<u32>(DIFF_OUT + <usize> n * 8, start);
    store<u32>(DIFF_OUT + <usize> n * 8, end, 4);
    n++;
  }
  return n;
}

export function diffA(): usize {
  return DIFF_A;
}

export function diffB(): usize {
  return DIFF_B;
}

export function diffOut(): usize {
  return DIFF_OUT;
}

/** True when the 4096 bytes at `p` are all zero. */
export function isZeroBlock(p: usize): bool {
  let acc = i32x4.splat(0);
  for (let off: usize = 0; off < BLOCK_SIZE; off += 64) {
    acc = v128.or(acc, v128.or(v128.load(p + off), v128.load(p + off, 16)));
    acc = v128.or(acc, v128.or(v128.load(p + off, 32), v128.load(p + off, 48)));
  }
  return !v128.any_true(acc);
}

// Anchor role: content-defined positions of a payload, where shifted content is looked for.
//
// Position p is an anchor when the 4 bytes at p (a little-endian u32), multiplied by an odd
// constant, have their top `bits` bits zero: a property of those bytes alone, so the same
// content is anchored at the same places whatever its offset (a block shifted by one byte
// keeps its anchors). 16 positions per step: four unaligned loads at p..p+3 hold the windows
// of p+4j+k in lane j of load k.
//
// Memory: [input: capacity + 32 bytes of slack for the loads][output: u32 positions].

import { DYN, ensureMemory } from "./layout";

const K: u32 = 0x9e3779b1;

let input: usize = 0;
let output: usize = 0;
let outCap: u32 = 0;

/** Lays out `capacity` input bytes and `maxAnchors` outputs; 0 on success, 1 when memory cannot grow. */
export function anchorSetup(capacity: u32, maxAnchors: u32): i32 {
  if (outCap != 0 || maxAnchors == 0) unreachable(); // one setup per instance
  input = DYN;
  output = (input + <usize> capacity + 32 + 15) & ~15;
  if (!ensureMemory(output + <usize> maxAnchors * 4)) return 1;
  outCap = maxAnchors;
  return 0;
}

export function anchorInput(): usize {
  return input;
}

export function anchorOutput(): usize {
  return output;
}

/** Bits j of the 4-bit lane mask `m` moved to bits 4j (then shifted by the load's k). */
function spread(m: u32): u32 {
  return (m & 1) | ((m & 2) << 3) | ((m & 4) << 6) | ((m & 8) << 9);
}

/**
 * Anchors of the `len` input bytes (positions p with p + 4 <= len), in increasing order,
 * written to the output; returns how many (at most the setup's `maxAnchors`: degenerate
 * content stops early, never overflows).
 */
export function anchorFind(len: u32, bits: u32): u32 {
  if (len < 4) return 0;
  const k = i32x4.splat(<i32> K);
  const limit = i32x4.splat(<i32> (1 << (32 - bits))); // h < limit: the top bits are zero
  const last: u32 = len - 4; // the last position with a whole window
  let n: u32 = 0;
  for (let p: u32 = 0; p <= last; p += 16) {
    const at = input + <usize> p;
    const h0 = i32x4.lt_u(i32x4.mul(v128.load(at), k), limit);
    const h1 = i32x4.lt_u(i32x4.mul(v128.load(at + 1), k), limit);
    const h2 = i32x4.lt_u(i32x4.mul(v128.load(at + 2), k), limit);
    const h3 = i32x4.lt_u(i32x4.mul(v128.load(at + 3), k), limit);
    if (!v128.any_true(v128.or(v128.or(h0, h1), v128.or(h2, h3)))) continue;
    let mask = spread(i32x4.bitmask(h0)) | (spread(i32x4.bitmask(h1)) << 1) |
      (spread(i32x4.bitmask(h2)) << 2) | (spread(i32x4.bitmask(h3)) << 3);
    while (mask != 0) {
      const q = p + ctz(mask);
      mask &= mask - 1;
      if (q > last) return n;
      store<u32>(output + (<usize> n << 2), q);
      if (++n == outCap) return n;
    }
  }
  return n;
}

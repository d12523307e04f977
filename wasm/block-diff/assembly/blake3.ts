// BLAKE3 tree logic on top of the compression functions in compress.ts.
//
// A refsync block is 4096 bytes = 4 BLAKE3 chunks. Full blocks go through the 4-lane SIMD
// path (chunks4: one chunk per lane); everything else (short tails, inputs of <= 4 KiB,
// parent nodes) is scalar. Only 32-byte outputs are produced.

import { chunks4, compress } from "./compress";
import {
  BLOCK_LEN,
  CHUNK_END,
  CHUNK_LEN,
  CHUNK_START,
  IV0,
  IV1,
  IV2,
  IV3,
  IV4,
  IV5,
  IV6,
  IV7,
  PARENT,
  ROOT,
} from "./constants";
import { CHUNK_CVS, PAD } from "./layout";

/** The IV as a chaining value in memory: the key of parent nodes and the start of chunks. */
export const IV_PTR: usize = memory.data<u32>([IV0, IV1, IV2, IV3, IV4, IV5, IV6, IV7]);

/** out = parent node over the 64 bytes at `children` (left CV then right CV). */
function parent(children: usize, root: bool, out: usize): void {
  compress(IV_PTR, children, 0, BLOCK_LEN, PARENT | select<u32>(ROOT, 0, root), out);
}

/**
 * CV (or root digest when `root`) of one chunk of `len` bytes (0..1024; 0 only for the
 * empty input) at `p` with chunk index `counter`.
 */
export function chunkCV(p: usize, len: u32, counter: u64, root: bool, out: usize): void {
  memory.copy(out, IV_PTR, 32);
  const blocks: u32 = len == 0 ? 1 : (len + BLOCK_LEN - 1) / BLOCK_LEN;
  for (let b: u32 = 0; b < blocks; b++) {
    const off = b * BLOCK_LEN;
    const blockLen = min(BLOCK_LEN, len - off);
    let msg = p + off;
    if (blockLen < BLOCK_LEN) {
      // The message must be zero-padded, and we must not read past the caller's bytes.
      memory.fill(PAD, 0, BLOCK_LEN);
      memory.copy(PAD, msg, blockLen);
      msg = PAD;
    }
    let flags = select<u32>(CHUNK_START, 0, b == 0);
    if (b == blocks - 1) flags |= CHUNK_END | select<u32>(ROOT, 0, root);
    compress(out, msg, counter, blockLen, flags, out);
  }
}

/**
 * Reduces the four chunk CVs at CHUNK_CVS (chunk-major) to the two children of the block's
 * top node, in place: CHUNK_CVS[0..64) = p01 || p23.
 */
function reduce4(): void {
  parent(CHUNK_CVS, false, CHUNK_CVS);
  parent(CHUNK_CVS + 64, false, CHUNK_CVS + 32);
}

/**
 * Hashes the full 4096-byte block at `p` whose first chunk has index `counter`, and writes
 * its top node: the root digest to `rootOut` and/or the non-root CV to `cvOut` (0 = skip).
 */
export function fullBlock(p: usize, counter: u64, rootOut: usize, cvOut: usize): void {
  chunks4(p, counter, CHUNK_CVS);
  reduce4();
  if (rootOut != 0) parent(CHUNK_CVS, true, rootOut);
  if (cvOut != 0) parent(CHUNK_CVS, false, cvOut);
}

/**
 * CV (or root digest) of the left-balanced subtree over the `len` bytes at `p` (1..4096;
 * 0 only for the empty input) whose first chunk has index `counter`. Up to 4 chunks, so the
 * shapes are: c0 | (c0 c1) | ((c0 c1) c2) | ((c0 c1) (c2 c3)).
 */
export function subtree(p: usize, len: u32, counter: u64, root: bool, out: usize): void {
  if (len <= CHUNK_LEN) {
    chunkCV(p, len, counter, root, out);
    return;
  }
  if (len == 4 * CHUNK_LEN) {
    if (root) fullBlock(p, counter, out, 0);
    else fullBlock(p, counter, 0, out);
    return;
  }
  const chunks = (len + CHUNK_LEN - 1) / CHUNK_LEN; // 2, 3 or 4 (the last one short)
  for (let c: u32 = 0; c < chunks; c++) {
    const off = c * CHUNK_LEN;
    chunkCV(p + off, min(CHUNK_LEN, len - off), counter + c, false, CHUNK_CVS + c * 32);
  }
  if (chunks == 4) {
    reduce4();
  } else if (chunks == 3) {
    parent(CHUNK_CVS, false, CHUNK_CVS);
    memory.copy(CHUNK_CVS + 32, CHUNK_CVS + 64, 32);
  }
  parent(CHUNK_CVS, root, out);
}

/**
 * Pushes the CVs of `n` consecutive full blocks onto the stream stack at `stack` (`len`
 * entries), merging completed subtrees as the reference implementation does: after block
 * number t (1-based) the stack holds one CV per set bit of t. Returns the new length.
 */
export function pushCVs(stack: usize, len: u32, cvs: usize, n: u32, blocksBefore: u64): u32 {
  for (let i: u32 = 0; i < n; i++) {
    memory.copy(stack + len * 32, cvs + i * 32, 32);
    len++;
    let total = blocksBefore + i + 1;
    while ((total & 1) == 0) {
      const left = stack + (len - 2) * 32; // left || right are adjacent: one parent message
      parent(left, false, left);
      len--;
      total >>= 1;
    }
  }
  return len;
}

/**
 * Root digest of a stream to `out`. The stack at `stack` holds `len` CVs of complete
 * subtrees (largest first); the CV of the final piece must already sit at stack[len]. The
 * stack is consumed.
 */
export function foldRoot(stack: usize, len: u32, out: usize): void {
  for (let i = <i32> len - 1; i >= 0; i--) {
    const node = stack + <usize> i * 32;
    parent(node, i == 0, i == 0 ? out : node);
  }
}

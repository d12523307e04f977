// BLAKE3 tree logic on top of the compression functions in compress.ts.
//
// A refsync block is 4096 bytes = 4 BLAKE3 chunks. Full blocks go through the 4-lane SIMD
// path (chunks4: one chunk per lane); batches of 4 blocks also reduce their parent nodes 4 at
// a time (group4: one block per lane). Short tails, inputs under 4 KiB, single blocks and the
// stream's upper tree levels are scalar. Only 32-byte outputs are produced.

import { chunks4, compress, compress4 } from "./compress";
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
import { CHUNK_CVS, CHUNK_WM, LANE_CVS, MSG_A, MSG_B, PAD, TOP_OUT, TOPS } from "./layout";
import { V } from "./simd";

/** The IV as a chaining value in memory: the key of parent nodes and the start of chunks. */
export const IV_PTR: usize = memory.data<u32>([IV0, IV1, IV2, IV3, IV4, IV5, IV6, IV7]);

/** The IV splatted over 4 lanes, word-major: the key of 4 parent nodes at once. */
// deno-fmt-ignore
const IV4_PTR: usize = memory.data<u32>([
  IV0, IV0, IV0, IV0, IV1, IV1, IV1, IV1, IV2, IV2, IV2, IV2, IV3, IV3, IV3, IV3,
  IV4, IV4, IV4, IV4, IV5, IV5, IV5, IV5, IV6, IV6, IV6, IV6, IV7, IV7, IV7, IV7,
]);

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
 * One block alone: parents are scalar. Groups of 4 blocks use group4 instead.
 */
export function fullBlock(p: usize, counter: u64, rootOut: usize, cvOut: usize): void {
  chunks4(p, counter, CHUNK_WM);
  // Word-major -> chunk-major, so that sibling CVs form one 64-byte parent message.
  for (let half: usize = 0; half < 32; half += 16) {
    const w0 = v128.load(CHUNK_WM + half * 4);
    const w1 = v128.load(CHUNK_WM + half * 4, 16);
    const w2 = v128.load(CHUNK_WM + half * 4, 32);
    const w3 = v128.load(CHUNK_WM + half * 4, 48);
    const t0 = V.unpackLo32(w0, w1);
    const t1 = V.unpackHi32(w0, w1);
    const t2 = V.unpackLo32(w2, w3);
    const t3 = V.unpackHi32(w2, w3);
    v128.store(CHUNK_CVS + half, V.unpackLo64(t0, t2));
    v128.store(CHUNK_CVS + half, V.unpackHi64(t0, t2), 32);
    v128.store(CHUNK_CVS + half, V.unpackLo64(t1, t3), 64);
    v128.store(CHUNK_CVS + half, V.unpackHi64(t1, t3), 96);
  }
  reduce4();
  if (rootOut != 0) parent(CHUNK_CVS, true, rootOut);
  if (cvOut != 0) parent(CHUNK_CVS, false, cvOut);
}

/**
 * Stores 4 lanes of word-major CVs at `src` (8 vectors) as 4 consecutive 32-byte CVs at
 * `out`, lane b -> out + 32 b.
 */
function storeLanes(src: usize, out: usize): void {
  for (let half: usize = 0; half < 32; half += 16) {
    const w0 = v128.load(src + half * 4);
    const w1 = v128.load(src + half * 4, 16);
    const w2 = v128.load(src + half * 4, 32);
    const w3 = v128.load(src + half * 4, 48);
    const t0 = V.unpackLo32(w0, w1);
    const t1 = V.unpackHi32(w0, w1);
    const t2 = V.unpackLo32(w2, w3);
    const t3 = V.unpackHi32(w2, w3);
    v128.store(out + half, V.unpackLo64(t0, t2));
    v128.store(out + half, V.unpackHi64(t0, t2), 32);
    v128.store(out + half, V.unpackLo64(t1, t3), 64);
    v128.store(out + half, V.unpackHi64(t1, t3), 96);
  }
}

/**
 * The 4 consecutive full blocks at `p`; block b's first chunk has index
 * `counter + b * step` (step 0: standalone digests; step 4: blocks of one stream). Writes
 * 4 root digests to `rootOut` and/or 4 non-root CVs to `cvOut` (0 = skip), 32 bytes each.
 *
 * The three parent levels run 4 blocks at a time, one block per lane: 3 (or 4) vector
 * compressions per 4 blocks instead of 12 (or 16) scalar ones.
 */
export function group4(p: usize, counter: u64, step: u64, rootOut: usize, cvOut: usize): void {
  for (let b: usize = 0; b < 4; b++) {
    chunks4(p + b * 4096, counter + <u64> b * step, LANE_CVS + b * 128);
  }
  // Word j of chunk c of block b sits at LANE_CVS + 128 b + 16 j, lane c. Transposing the
  // 4 blocks' vector j gives, lane = block, word j of chunk 0, 1, 2, 3: message words j and
  // j + 8 of the p01 parents (MSG_A) and of the p23 parents (MSG_B).
  for (let j: usize = 0; j < 128; j += 16) {
    const a = v128.load(LANE_CVS + j);
    const b = v128.load(LANE_CVS + j, 128);
    const c = v128.load(LANE_CVS + j, 256);
    const d = v128.load(LANE_CVS + j, 384);
    const t0 = V.unpackLo32(a, b);
    const t1 = V.unpackHi32(a, b);
    const t2 = V.unpackLo32(c, d);
    const t3 = V.unpackHi32(c, d);
    v128.store(MSG_A + j, V.unpackLo64(t0, t2));
    v128.store(MSG_A + j, V.unpackHi64(t0, t2), 128);
    v128.store(MSG_B + j, V.unpackLo64(t1, t3));
    v128.store(MSG_B + j, V.unpackHi64(t1, t3), 128);
  }
  // The p01 and p23 outputs, word-major, are directly the message of the top node.
  compress4(MSG_A, IV4_PTR, BLOCK_LEN, PARENT, TOPS);
  compress4(MSG_B, IV4_PTR, BLOCK_LEN, PARENT, TOPS + 128);
  if (rootOut != 0) {
    compress4(TOPS, IV4_PTR, BLOCK_LEN, PARENT | ROOT, TOP_OUT);
    storeLanes(TOP_OUT, rootOut);
  }
  if (cvOut != 0) {
    compress4(TOPS, IV4_PTR, BLOCK_LEN, PARENT, TOP_OUT);
    storeLanes(TOP_OUT, cvOut);
  }
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

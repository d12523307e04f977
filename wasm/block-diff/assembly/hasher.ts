// Hashing role: batch hashing of 4 KiB blocks and the stream (Blake3Hasher) steps.
//
// Regions (set up once by hasherSetup; never moved afterwards, so views stay valid):
//   input    capacity x 4096 bytes   blocks written by the caller
//   digests  capacity x 32 bytes     standalone BLAKE3-256 of each block
//   cvs      capacity x 32 bytes     in-stream (non-root) CV of each block

import { foldRoot, fullBlock, group4, pushCVs, subtree } from "./blake3";
import { BLOCK_SIZE, OUT_LEN } from "./constants";
import { DYN, ensureMemory, OUT, STACK } from "./layout";

let capacity: u32 = 0;
let inputPtr: usize = 0;
let digestPtr: usize = 0;
let cvPtr: usize = 0;

/** Lays out the hashing regions for `cap` blocks; returns the input pointer (0 on failure). */
export function hasherSetup(cap: u32): usize {
  if (capacity != 0 || cap == 0) unreachable(); // one setup per instance
  const input = DYN;
  const digests = input + <usize> cap * BLOCK_SIZE;
  const cvs = digests + <usize> cap * OUT_LEN;
  if (!ensureMemory(cvs + <usize> cap * OUT_LEN)) return 0;
  capacity = cap;
  inputPtr = input;
  digestPtr = digests;
  cvPtr = cvs;
  return input;
}

export function hasherInput(): usize {
  return inputPtr;
}

export function hasherDigests(): usize {
  return digestPtr;
}

export function hasherCVs(): usize {
  return cvPtr;
}

export function stackPtr(): usize {
  return STACK;
}

export function outPtr(): usize {
  return OUT;
}

/** Standalone BLAKE3-256 of each of the `n` blocks in the input region -> digests region. */
export function hashBlocks(n: u32): void {
  if (n > capacity) unreachable();
  let i: u32 = 0;
  for (; i + 4 <= n; i += 4) {
    group4(inputPtr + <usize> i * BLOCK_SIZE, 0, 0, digestPtr + <usize> i * OUT_LEN, 0);
  }
  for (; i < n; i++) {
    fullBlock(inputPtr + <usize> i * BLOCK_SIZE, 0, digestPtr + <usize> i * OUT_LEN, 0);
  }
}

/**
 * The `n` blocks in the input region are blocks first..first+n-1 of a stream: writes each
 * one's in-stream CV (chunk counters 4k..4k+3, non-root) to the cvs region and, when
 * `wantDigests`, its standalone digest to the digests region. The two differ for k > 0
 * because the chunk counter enters every compression, so a block then costs two passes.
 * Block 0's digest is always written: it is the stream's root if the stream ends there.
 */
export function streamBlocks(n: u32, first: f64, wantDigests: bool): void {
  if (n > capacity) unreachable();
  const k0 = <u64> first;
  let i: u32 = 0;
  if (k0 == 0 && n > 0) {
    // Block 0: standalone and in-stream trees coincide; one pass gives both tops.
    fullBlock(inputPtr, 0, digestPtr, cvPtr);
    i = 1;
  }
  for (; i + 4 <= n; i += 4) {
    const p = inputPtr + <usize> i * BLOCK_SIZE;
    if (wantDigests) group4(p, 0, 0, digestPtr + <usize> i * OUT_LEN, 0);
    group4(p, (k0 + i) << 2, 4, 0, cvPtr + <usize> i * OUT_LEN);
  }
  for (; i < n; i++) {
    const p = inputPtr + <usize> i * BLOCK_SIZE;
    if (wantDigests) fullBlock(p, 0, digestPtr + <usize> i * OUT_LEN, 0);
    fullBlock(p, (k0 + i) << 2, 0, cvPtr + <usize> i * OUT_LEN);
  }
}

/** Pushes cvs[from..from+n) onto the stack (len entries); returns the new length. */
export function streamPush(len: u32, from: u32, n: u32, blocksBefore: f64): u32 {
  if (from + n > capacity) unreachable();
  return pushCVs(STACK, len, cvPtr + <usize> from * OUT_LEN, n, <u64> blocksBefore);
}

/**
 * Root digest of a stream -> OUT. The stack holds `len` subtree CVs. When `lastIsCV` the
 * final piece is a full block whose in-stream CV the caller wrote at stack[len] (len > 0);
 * otherwise it is the `lastLen` (0..4096) bytes at the start of the input region and
 * `blockIndex` is its block number. The stack is consumed.
 */
export function streamFinish(len: u32, lastIsCV: bool, lastLen: u32, blockIndex: f64): void {
  if (!lastIsCV) {
    if (len == 0) {
      subtree(inputPtr, lastLen, 0, true, OUT);
      return;
    }
    subtree(inputPtr, lastLen, (<u64> blockIndex) << 2, false, STACK + <usize> len * OUT_LEN);
  }
  foldRoot(STACK, len, OUT);
}

// Fixed regions of linear memory. Nothing on the hot paths allocates: the TypeScript face
// writes inputs straight into these regions and reads results back from them.
//
//   [0, BASE)                 static data of the module (IV table, ...)
//   [BASE, DYN)               small fixed scratch areas, below
//   [DYN, ...)                the one role this instance was set up for: hashing areas
//                             (hasher.ts) or a block index table (table.ts)
//
// Memory grows only in hasherSetup / indexSetup / table growth; the TypeScript face
// re-creates its views after each call that can grow.

export const BASE: usize = 65536;
/** 32-byte digest output of finalize / single results. */
export const OUT: usize = BASE;
/** 32-byte key of single-key index operations. */
export const KEY: usize = BASE + 64;
/** 64-byte zero-padded message of a short last compression. */
export const PAD: usize = BASE + 128;
/** Four 32-byte chunk CVs of the block being reduced (chunk-major, so siblings are adjacent). */
export const CHUNK_CVS: usize = BASE + 256;
/** Stream CV stack: one entry per set bit of the block count (< 2^53), plus one in flight. */
export const STACK: usize = BASE + 512;
export const STACK_ENTRIES: u32 = 64;
/** Word-major chunk CVs of one block (vector j = word j of the 4 chunks). */
export const CHUNK_WM: usize = BASE + 2560;
/** Word-major chunk CVs of 4 blocks (block b at + 128 b), input of parents4. */
export const LANE_CVS: usize = BASE + 2688;
/** parents4's word-major messages (p01s, p23s), their outputs, and the top outputs. */
export const MSG_A: usize = BASE + 3200;
export const MSG_B: usize = BASE + 3456;
export const TOPS: usize = BASE + 3712; // p01s then p23s = the top nodes' messages
export const TOP_OUT: usize = BASE + 3968; // .. BASE + 4096
/** diff: the two blocks and the output ranges (u32 start, u32 end pairs; at most 456). */
export const DIFF_A: usize = BASE + 4096;
export const DIFF_B: usize = BASE + 8192;
export const DIFF_OUT: usize = BASE + 12288;
/** Start of the role region; 4 KiB aligned so input blocks are too. */
export const DYN: usize = BASE + 16384;

/** Grows memory so that [0, end) is addressable; false when the engine refuses. */
export function ensureMemory(end: usize): bool {
  const need = <i32> ((end + 0xffff) >>> 16);
  const have = memory.size();
  if (need <= have) return true;
  return memory.grow(need - have) >= 0;
}

// BLAKE3 constants (from the BLAKE3 specification) and the memory layout shared by the
// modules of this package.

export const IV0: u32 = 0x6a09e667;
export const IV1: u32 = 0xbb67ae85;
export const IV2: u32 = 0x3c6ef372;
export const IV3: u32 = 0xa54ff53a;
export const IV4: u32 = 0x510e527f;
export const IV5: u32 = 0x9b05688c;
export const IV6: u32 = 0x1f83d9ab;
export const IV7: u32 = 0x5be0cd19;

// Domain flags.
export const CHUNK_START: u32 = 1;
export const CHUNK_END: u32 = 2;
export const PARENT: u32 = 4;
export const ROOT: u32 = 8;

export const BLOCK_LEN: u32 = 64; // one compression
export const CHUNK_LEN: u32 = 1024; // 16 compressions, one leaf of the tree
export const BLOCK_SIZE: u32 = 4096; // one refsync block = 4 chunks = one v128 of lanes
export const OUT_LEN: u32 = 32;

/**
 * TypeScript face of the block-diff wasm module: BLAKE3 of 4 KiB blocks (SIMD, batched and
 * streamed), the block index (digest -> location) and the block diff.
 *
 * Requires the module built by `deno task build:wasm`.
 *
 * @example
 * ```ts
 * import { BlockIndex, Blake3Hasher, toHex } from "./mod.ts";
 *
 * const index = new BlockIndex();
 * const hasher = new Blake3Hasher();
 * const blockDigests = hasher.update(payload); // 32 bytes per completed aligned block
 * for (let i = 0; i < blockDigests.length / 32; i++) {
 *   index.insert(blockDigests.subarray(i * 32, i * 32 + 32), payloadOffset + i * 4096);
 * }
 * const etag = toHex(hasher.digest());
 * ```
 *
 * @module
 */

export {
  blake3,
  Blake3Hasher,
  type Blake3HasherOptions,
  BLOCK_SIZE,
  BlockHasher,
  DIGEST_SIZE,
  hashBlocks,
  toHex,
} from "./blake3.ts";
export { BlockIndex } from "./block_index.ts";
export { applyDiff, diffBlocks, isZeroBlock } from "./diff.ts";

/**
 * The block index (BLAKE3 digest of a 4 KiB block -> where the destination
 * holds those bytes), the block diff and content-defined anchors (where
 * shifted content is looked for), all in the block-diff wasm module
 * (`src/wasm/block-diff.ts`; built by `deno task build:wasm`). Hashing is
 * `src/hash/blake3.ts`.
 *
 * @example
 * ```ts
 * import { BlockIndex } from "./mod.ts";
 * import { hashBlocks } from "../hash/blake3.ts";
 *
 * const payload = new Uint8Array(2 * 4096).fill(7, 4096);
 * const digests = hashBlocks(payload); // 32 bytes per block
 * const index = new BlockIndex();
 * index.insert(digests.subarray(32, 64), 4096); // where the second block lies
 * console.log(index.lookup(digests.subarray(32, 64))); // 4096
 * ```
 *
 * @module
 */

export { AnchorFinder } from "./anchors.ts";
export { BlockIndex } from "./block_index.ts";
export { applyDiff, diffBlocks, isZeroBlock } from "./diff.ts";

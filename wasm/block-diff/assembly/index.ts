// Entry of the block-diff module: BLAKE3 of 4 KiB blocks (SIMD), the block index table and
// the block diff. One instance serves one role (hashing + diff, or one block index); the
// src/wasm/block-diff.ts loads it; src/hash/ and src/block-index/ instantiate it per role.

export {
  hashBlocks,
  hasherCVs,
  hasherDigests,
  hasherInput,
  hasherSetup,
  outPtr,
  stackPtr,
  streamBlocks,
  streamFinish,
  streamPush,
} from "./hasher";
export {
  indexBatchKeys,
  indexBatchValues,
  indexClear,
  indexInsert,
  indexInsertBatch,
  indexKey,
  indexLookup,
  indexLookupBatch,
  indexRemove,
  indexRemoveBatch,
  indexSetup,
  indexSize,
  indexSlots,
} from "./table";
export { diffA, diffB, diffBlocks, diffOut, isZeroBlock } from "./diff";
export { anchorFind, anchorInput, anchorOutput, anchorSetup } from "./anchors";

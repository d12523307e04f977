/**
 * The volume digest: a chain over every CP's content. Both appliances compute
 * it from the blocks they write, so equal digests after CP n mean equal images
 * (the same bytes at the same block numbers under the same superblock fields).
 *
 * `cpDigest = BLAKE3(for each written block in block order: u32 block, 32-byte digest)`
 * `volumeDigest(n) = BLAKE3(volumeDigest(n-1), cpDigest, u64 cp, u64 lsnCovered,
 *  root ptr, u64 blockCount, u64 pairGeneration)`
 *
 * @module
 */
import { blake3 } from "../../hash/blake3.ts";
import type { BlockPtr } from "./types.ts";
import type { WrittenBlocks } from "./written.ts";

/**
 * Content digest of the blocks one CP wrote.
 *
 * @example
 * ```ts
 * import type { CpTransaction } from "./volume.ts";
 * declare const tx: CpTransaction;
 * const d = cpContentDigest(tx.written);
 * ```
 */
export function cpContentDigest(written: WrittenBlocks): Uint8Array {
  const rows = written.rowsByBlock();
  const buf = new Uint8Array(rows.length * 36);
  const view = new DataView(buf.buffer);
  rows.forEach((row, i) => {
    view.setUint32(i * 36, written.block(row), true);
    buf.set(written.digest(row), i * 36 + 4);
  });
  return blake3(buf);
}

/** The next link of the volume digest chain. */
export function nextVolumeDigest(
  previous: Uint8Array,
  cpDigest: Uint8Array,
  fields: {
    cp: number;
    lsnCovered: number;
    catalogRoot: BlockPtr | null;
    blockCount: number;
    pairGeneration: number;
  },
): Uint8Array {
  const buf = new Uint8Array(32 + 32 + 40);
  const view = new DataView(buf.buffer);
  buf.set(previous, 0);
  buf.set(cpDigest, 32);
  view.setBigUint64(64, BigInt(fields.cp), true);
  view.setBigUint64(72, BigInt(fields.lsnCovered), true);
  view.setUint32(80, fields.catalogRoot?.block ?? 0, true);
  view.setUint32(84, fields.catalogRoot?.birth ?? 0, true);
  view.setBigUint64(88, BigInt(fields.blockCount), true);
  view.setBigUint64(96, BigInt(fields.pairGeneration), true);
  return blake3(buf);
}

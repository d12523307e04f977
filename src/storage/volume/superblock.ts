/**
 * The superblock: the root of one committed CP. Two slots (blocks 0 and 1)
 * alternate; CP n lives in slot n % 2, so writing CP n+1 never touches the
 * slot of CP n. Opening picks the valid slot with the highest CP number: a
 * torn or bit-flipped newest slot is passed over and the previous CP wins.
 *
 * Layout (little-endian), checksummed by BLAKE3 over bytes 0..4063:
 * ```
 *   0  8  magic "REFSYNC1"      8  4  version       12  4  reserved
 *  16 16  volume id            32  8  pair generation
 *  40  8  cp number            48  8  lsn covered (log records <= this are in the CP)
 *  56  8  catalog root ptr     64  8  block count (allocated high-water mark)
 *  72 32  volume digest (chain over every CP's content digest)
 * 104  8  promoted at LSN (the last LSN of the history before the promotion that
 *         began this pair generation; 0 in generation 1)
 * 112  8  promoted from CP (the CP that promotion started from; 0 = none or unknown)
 * 120 32  promoted from digest (that CP's volume digest; zeros with it)
 * 4064 32 checksum
 * ```
 *
 * Version 2: block map entries carry the checksum of their block (16 bytes,
 * `types.ts`). Version 1 volumes (8-byte entries, no checksums) are refused,
 * not read: see {@link SUPERBLOCK_VERSION}.
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE, equalBytes, hasPrefix } from "../../bytes/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { type BlockPtr, readBlockPtr, writeBlockPtr } from "./types.ts";

const MAGIC = new TextEncoder().encode("REFSYNC1");
/**
 * The on-disk format this build reads and writes. A volume of another version
 * is refused with its version named ({@link superblockVersion}): reading
 * version 1 would keep a second map decoder for good and serve its blocks
 * unchecked, a promise quietly not kept.
 */
export const SUPERBLOCK_VERSION = 2;
const CHECKSUM_OFFSET = BLOCK_SIZE - 32;

/** The fields of a committed CP. */
export interface Superblock {
  volumeId: Uint8Array;
  pairGeneration: number;
  cp: number;
  lsnCovered: number;
  catalogRoot: BlockPtr | null;
  blockCount: number;
  volumeDigest: Uint8Array;
  /**
   * The last LSN the promotion that began this pair generation took from the
   * old source (its CP's lsnCovered), carried into every later CP; 0 in
   * generation 1. A returning old source keeps its log up to it and sets the
   * rest aside.
   */
  promotedAtLsn: number;
  /**
   * The committed CP the promotion that began this pair generation started
   * from, and its volume digest, carried into every later CP (0 and zeros in
   * generation 1, and on volumes written before these fields: unknown). The
   * returning old source holds that CP when it can fail back by a resync.
   */
  promotedFromCp: number;
  promotedFromDigest: Uint8Array;
}

/**
 * Checks the superblock a CP is about to commit against the committed one,
 * before it is written (paired assertions, as TigerBeetle's superblock
 * `write_header`): the next CP, of the same volume (a destination's first CP
 * takes its source's volume id), and neither `lsnCovered` nor the pair
 * generation goes back.
 *
 * @example
 * ```ts
 * import { assertSuccessor, type Superblock } from "./superblock.ts";
 *
 * const current: Superblock = {
 *   volumeId: new Uint8Array(16), pairGeneration: 1, cp: 4, lsnCovered: 90,
 *   catalogRoot: null, blockCount: 2, volumeDigest: new Uint8Array(32), promotedAtLsn: 0,
 *   promotedFromCp: 0, promotedFromDigest: new Uint8Array(32),
 * };
 * assertSuccessor(current, { ...current, cp: 5, lsnCovered: 120 }); // fine
 * // assertSuccessor(current, { ...current, cp: 5, lsnCovered: 80 }) throws an AssertionError
 * ```
 */
export function assertSuccessor(current: Superblock, next: Superblock): void {
  assert(next.cp === current.cp + 1, `CP ${next.cp} is committed over CP ${current.cp}`);
  assert(
    current.cp === 0 || equalBytes(next.volumeId, current.volumeId),
    `CP ${next.cp} is of volume ${next.volumeId.toHex()}, not ${current.volumeId.toHex()}`,
  );
  assert(
    next.lsnCovered >= current.lsnCovered,
    `CP ${next.cp} covers LSN ${next.lsnCovered}, below CP ${current.cp}'s ${current.lsnCovered}`,
  );
  assert(
    next.pairGeneration >= current.pairGeneration,
    `CP ${next.cp} is of pair generation ${next.pairGeneration}, below ${current.pairGeneration}`,
  );
}

/** Number of superblock slots at the start of the volume. */
export const SUPERBLOCK_SLOTS = 2;

/**
 * Encodes `sb` into a full checksummed block.
 *
 * @example
 * ```ts
 * declare const sb: Superblock;
 * const block = encodeSuperblock(sb);
 * decodeSuperblock(block); // deep-equals sb
 * ```
 */
export function encodeSuperblock(sb: Superblock): Uint8Array {
  assert(sb.volumeId.length === 16, "a volume id is 16 bytes");
  assert(sb.volumeDigest.length === 32, "a volume digest is 32 bytes");
  assert(sb.promotedFromDigest.length === 32, "a volume digest is 32 bytes");
  const out = new Uint8Array(BLOCK_SIZE);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(8, SUPERBLOCK_VERSION, true);
  out.set(sb.volumeId, 16);
  view.setBigUint64(32, BigInt(sb.pairGeneration), true);
  view.setBigUint64(40, BigInt(sb.cp), true);
  view.setBigUint64(48, BigInt(sb.lsnCovered), true);
  writeBlockPtr(view, 56, sb.catalogRoot ?? { block: 0, birth: 0 });
  view.setBigUint64(64, BigInt(sb.blockCount), true);
  out.set(sb.volumeDigest, 72);
  view.setBigUint64(104, BigInt(sb.promotedAtLsn), true);
  view.setBigUint64(112, BigInt(sb.promotedFromCp), true);
  out.set(sb.promotedFromDigest, 120);
  out.set(blake3(out.subarray(0, CHECKSUM_OFFSET)), CHECKSUM_OFFSET);
  return out;
}

/**
 * Decodes a superblock slot; `null` when it is not a valid superblock (never
 * written, torn, or corrupt).
 *
 * @example
 * ```ts
 * const block = new Uint8Array(4096);
 * const sb = decodeSuperblock(block);
 * if (sb === null) console.log("slot is empty or corrupt");
 * ```
 */
export function decodeSuperblock(block: Uint8Array): Superblock | null {
  if (superblockVersion(block) !== SUPERBLOCK_VERSION) return null;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const root = readBlockPtr(view, 56);
  return {
    volumeId: block.slice(16, 32),
    pairGeneration: Number(view.getBigUint64(32, true)),
    cp: Number(view.getBigUint64(40, true)),
    lsnCovered: Number(view.getBigUint64(48, true)),
    catalogRoot: root.block === 0 ? null : root,
    blockCount: Number(view.getBigUint64(64, true)),
    volumeDigest: block.slice(72, 104),
    promotedAtLsn: Number(view.getBigUint64(104, true)),
    promotedFromCp: Number(view.getBigUint64(112, true)),
    promotedFromDigest: block.slice(120, 152),
  };
}

/**
 * The format version of a valid superblock slot of any version (magic and
 * checksum intact), else null.
 *
 * @example
 * ```ts
 * declare const sb: Superblock;
 * superblockVersion(encodeSuperblock(sb)); // SUPERBLOCK_VERSION
 * ```
 */
export function superblockVersion(block: Uint8Array): number | null {
  if (block.length !== BLOCK_SIZE) return null;
  if (!hasPrefix(block, MAGIC)) return null;
  const sum = blake3(block.subarray(0, CHECKSUM_OFFSET));
  if (!equalBytes(sum, block.subarray(CHECKSUM_OFFSET, CHECKSUM_OFFSET + sum.length))) return null;
  return new DataView(block.buffer, block.byteOffset, block.byteLength).getUint32(8, true);
}

/** The slot that CP `cp` is written to. */
export function superblockSlot(cp: number): number {
  return cp % SUPERBLOCK_SLOTS;
}

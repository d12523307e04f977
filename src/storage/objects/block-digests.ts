/**
 * The storage side of the online verify (`POST /v1/admin/verify`): the
 * content digests of every live block of a committed CP in block order, each
 * block checked against its own pointer on the way; the keys of blocks for a
 * report; and the repair write, which puts a block's bytes back only when they
 * match what its own pointer says.
 *
 * Block order (not the tree's key order) is what lets two sides merge their
 * lists in bounded memory, whatever either side's tree can reach. The walk
 * goes by windows of block numbers: a window of W block numbers holds at most
 * W live blocks, so memory stays at 13 bytes per block number of the window
 * whatever the volume's size; each window costs one walk of the metadata
 * (data blocks are read once, in the window that holds them).
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { RefsyncError } from "../../errors/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { DIGEST_BYTES, type DigestRecord, type RepairAnswer } from "../../protocol/verify/mod.ts";
import { decodeNode } from "../catalog/node.ts";
import { blockCheck } from "../volume/check.ts";
import type { Superblock } from "../volume/superblock.ts";
import type { BlockReader } from "../volume/types.ts";
import { type LiveBlock, type LiveKind, walkLive } from "../walk.ts";

/** Default block numbers per window of {@link blockDigests} (1 GiB of volume, 3.4 MB of memory). */
export const DIGEST_WINDOW_BLOCKS = 1 << 18;

/** One live block's digest (`damaged`: it fails its own pointer's check here). */
export type BlockDigest = DigestRecord;

const KIND_CODE: Record<LiveKind, number> = { node: 1, map: 2, data: 3 };

/**
 * The digests of every block live in the CP of `sb`, in block order, each
 * block read once and checked against its pointer. The caller keeps the CP's
 * blocks from moving meanwhile (a pin).
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * for (const d of blockDigests(volume, volume.superblock)) {
 *   if (d.damaged) console.log(`block ${d.block} is damaged`);
 * }
 * ```
 */
export function* blockDigests(
  reader: BlockReader,
  sb: Superblock,
  windowBlocks = DIGEST_WINDOW_BLOCKS,
): Generator<BlockDigest> {
  const width = Math.max(1, Math.min(windowBlocks, sb.blockCount));
  const kinds = new Uint8Array(width);
  const births = new Uint32Array(width);
  const checks = new BigUint64Array(width);
  for (let lo = 2; lo < sb.blockCount; lo += width) {
    kinds.fill(0);
    walkLive(reader, sb.catalogRoot, (b) => {
      const i = b.block - lo;
      if (i < 0 || i >= width) return;
      kinds[i] = KIND_CODE[b.kind];
      births[i] = b.birth;
      checks[i] = b.check;
    }, { onDamaged: () => {} }); // the damaged block itself is listed, and fails below
    for (let i = 0; i < width && lo + i < sb.blockCount; i++) {
      if (kinds[i] === 0) continue;
      const block = lo + i;
      const bytes = reader.readBlock(block);
      const damaged = kinds[i] === KIND_CODE.node
        ? !nodeIntact(bytes, block, births[i])
        : blockCheck(bytes) !== checks[i];
      yield { block, digest: blake3(bytes).subarray(0, DIGEST_BYTES), damaged };
    }
  }
}

/** True when `bytes` decode as the catalog node its pointer (birth `birth`) expects. */
function nodeIntact(bytes: Uint8Array, block: number, birth: number): boolean {
  try {
    return decodeNode(bytes, block).birth === birth;
  } catch {
    return false;
  }
}

/**
 * The key of the object each of `blocks` belongs to in the CP of `sb` (one
 * walk); blocks of no object (catalog nodes) or not reached are absent.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * const keys = keysOfBlocks(volume, volume.superblock, [517]); // Map { 517 => "big" }
 * ```
 */
export function keysOfBlocks(
  reader: BlockReader,
  sb: Superblock,
  blocks: Iterable<number>,
): Map<number, string> {
  const wanted = new Set(blocks);
  const out = new Map<number, string>();
  if (wanted.size === 0) return out;
  const dec = new TextDecoder();
  walkLive(reader, sb.catalogRoot, (b) => {
    if (b.key !== null && wanted.has(b.block)) out.set(b.block, dec.decode(b.key));
  }, { onDamaged: () => {} });
  return out;
}

/** A block's bytes sent to mend it. */
export interface RepairRecord {
  block: number;
  bytes: Uint8Array;
}

/** What a repair did: the blocks written (and fdatasynced), and the ones refused with why. */
export type RepairResult = RepairAnswer;

/**
 * Which of `records` may be written over live blocks of the CP of `sb`: those
 * whose bytes match the check in the block's own pointer (for a catalog node:
 * they decode as a node of the pointer's birth CP). Anything else is refused
 * with its reason; one walk for the batch.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * declare const bytes: Uint8Array;
 * const { accepted, refused } = judgeRepairs(volume, volume.superblock, [{ block: 517, bytes }]);
 * ```
 */
export function judgeRepairs(
  reader: BlockReader,
  sb: Superblock,
  records: RepairRecord[],
): { accepted: RepairRecord[]; refused: RepairResult["refused"] } {
  const wanted = new Map<number, LiveBlock | null>(records.map((r) => [r.block, null]));
  walkLive(reader, sb.catalogRoot, (b) => {
    if (wanted.has(b.block)) wanted.set(b.block, b);
  }, { onDamaged: () => {} });
  const accepted: RepairRecord[] = [];
  const refused: RepairResult["refused"] = [];
  for (const r of records) {
    const live = wanted.get(r.block) ?? null;
    const why = r.bytes.length !== BLOCK_SIZE
      ? `${r.bytes.length} bytes, not one block of ${BLOCK_SIZE}`
      : live === null
      ? `not a block this side reaches in CP ${sb.cp} (not live, or under a damaged block)`
      : live.kind === "node"
      ? (nodeIntact(r.bytes, r.block, live.birth)
        ? null
        : `the bytes are not the catalog node of CP ${live.birth} its pointer expects`)
      : blockCheck(r.bytes) === live.check
      ? null
      : `the bytes do not match the check in its ${live.kind} block's map entry`;
    if (why === null) accepted.push(r);
    else refused.push({ block: r.block, message: `block ${r.block}: ${why}; not written` });
  }
  return { accepted, refused };
}

/**
 * The error of a repair that was refused.
 *
 * @example
 * ```ts
 * const e = repairRefused([{ block: 9, message: "block 9: ..." }]);
 * e.code; // "conflict"
 * ```
 */
export function repairRefused(refused: RepairResult["refused"]): RefsyncError {
  return new RefsyncError("conflict", refused.map((r) => r.message).join("; "), { refused });
}

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
import type { Logger } from "../../logging/mod.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { Reclamation } from "./reclamation.ts";

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

/** An open list of a committed CP's block digests (see `ObjectStore.openBlockDigests`). */
export interface BlockDigestList {
  cp: number;
  /** The CP's volume digest (32 bytes). */
  volumeDigest: Uint8Array;
  /**
   * Every live block in block order, read lazily: pull it while the list is
   * open. Not pulled for the idle bound, the list is released and the next
   * pull throws `request_timeout`.
   */
  blocks: Generator<BlockDigest>;
  /** The key of the object each of `blocks` belongs to in this CP (one walk; while open). */
  keysOf(blocks: Iterable<number>): Map<number, string>;
  /** Ends the pin: the CP's blocks may move again. */
  close(): void;
}

/** What {@link openDigestList} needs of the store. */
export interface DigestListContext {
  reader: BlockReader;
  reclamation: Reclamation;
  logger: Logger;
  clock: Clock;
  /** A list not pulled for this long (ms) is released, as an abandoned read is. */
  idleMs: number;
}

/**
 * The digest list of the CP of `sb`, pinned (reclamation) until it is closed,
 * read to its end, or left unpulled for `idleMs`: a peer that stops reading
 * must not hold reclamation back for ever.
 *
 * @example
 * ```ts
 * import type { Superblock } from "../volume/superblock.ts";
 * declare const ctx: DigestListContext;
 * declare const sb: Superblock;
 * const list = openDigestList(ctx, sb);
 * for (const d of list.blocks) console.log(d.block);
 * list.close();
 * ```
 */
export function openDigestList(
  ctx: DigestListContext,
  sb: Superblock,
  windowBlocks?: number,
): BlockDigestList {
  const { reader, reclamation, logger, clock, idleMs } = ctx;
  const pin = reclamation.pin(sb.cp, "(verify)");
  const inner = blockDigests(reader, sb, windowBlocks);
  let listed = 0;
  const awaitPull = () => {
    clock.clearTimeout(pin.timer);
    pin.timer = clock.setTimeout(() => {
      logger.warn("store.verify_abandoned", { cp: sb.cp, idleMs, listed });
      reclamation.unpin(pin);
    }, idleMs);
  };
  function* blocks(): Generator<BlockDigest> {
    try {
      for (;;) {
        clock.clearTimeout(pin.timer);
        if (pin.released) {
          throw new RefsyncError(
            "request_timeout",
            `the digest list of CP ${sb.cp} was released (not pulled for ${idleMs} ms, or closed)`,
          );
        }
        let next: IteratorResult<BlockDigest>;
        try {
          next = inner.next();
        } catch (e) {
          reclamation.unpin(pin);
          throw e;
        }
        // The idle bound runs on after the end too: the keys are looked up once merged.
        awaitPull();
        if (next.done) return;
        listed++;
        yield next.value;
      }
    } finally {
      if (!pin.released) awaitPull();
    }
  }
  awaitPull();
  return {
    cp: sb.cp,
    volumeDigest: sb.volumeDigest,
    blocks: blocks(),
    keysOf: (wanted) => {
      if (pin.released) throw new Error("invariant: keys of a digest list already closed");
      return keysOfBlocks(reader, sb, wanted);
    },
    close: () => reclamation.unpin(pin),
  };
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

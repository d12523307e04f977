/**
 * Where the destination already holds a block's bytes, by content: the source
 * hashes every 4 KiB-aligned block of every log payload once, when it logs it
 * (the digests come with the frame), and indexes digest -> location — a block of
 * a forwarded log record, or a block live in the committed volume. The CP sync
 * asks it for blocks that no extent maps onto a whole log block (patched,
 * rewritten), so content that already crossed the network is referenced, not
 * sent again; the log forwarding asks it for the blocks and whole payloads of
 * each record it sends (./frame-deduper.ts). The index is a hint: every answer
 * is checked against the bytes here, and again by the destination, before it
 * is used.
 *
 * Partial last blocks (small payloads, tails) are indexed too, by the digest
 * of the block a CP makes of them (zero-padded), so a volume block of an
 * object that ends the same way is found by the same key.
 *
 * A block's volume location, or its first log location while the destination
 * still holds that record, is kept when a repeat is logged (the repeat is not
 * acknowledged yet, so it could not be referenced); a location in log the
 * destination dropped is replaced.
 *
 * Location encoding (a non-negative integer < 2^53): volume block `b` is `b * 2`;
 * block `i` of the payload of log record `lsn` is `(lsn * 256 + i) * 2 + 1`
 * (a payload holds at most 256 blocks).
 *
 * @module
 */
import { BLOCK_SIZE, equalBytes } from "../../bytes/mod.ts";
import { Off } from "../../protocol/log-frame/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { BlockIndex } from "../../block-index/mod.ts";
import type { Appended } from "../../storage/log/mod.ts";

/** A place the destination holds a block. */
export type BlockLocation =
  | { kind: "volume"; block: number }
  | { kind: "log"; lsn: number; payloadOffset: number };

/** Entries kept at most; beyond, the index starts over (memory is bounded by configuration). */
const MAX_ENTRIES = 1 << 18;
/** Blocks of a payload at most (1 MiB records). */
const PAYLOAD_BLOCKS = 256;

/**
 * The source's content index.
 *
 * @example
 * ```ts
 * import type { Appended } from "../../storage/log/mod.ts";
 * declare const records: Appended[];
 * declare const digest: Uint8Array;
 * const locator = new BlockLocator();
 * locator.addLogRecords(records, 0);
 * const where = locator.find(digest); // null, or a location to verify
 * ```
 */
export class BlockLocator {
  #index = new BlockIndex(1 << 12);
  /** payloadDigest -> LSN of a record with that whole payload. */
  #payloads = new BlockIndex(1 << 10);
  #maxEntries: number;
  /** The answer of {@link findBlocks}, reused. */
  #found = new Float64Array(PAYLOAD_BLOCKS);

  constructor(maxEntries = MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#index.size;
  }

  /**
   * Indexes the aligned blocks and whole payloads of freshly logged records.
   * An entry naming a volume block or a record above `droppedLsn` (the
   * destination still holds it) is kept; one in dropped log is replaced.
   */
  addLogRecords(records: Appended[], droppedLsn = Infinity): void {
    for (const r of records) {
      const n = r.blockDigests.length / 32;
      if (r.header.payloadLength > 0) {
        if (this.#payloads.size >= this.#maxEntries) this.#payloads.clear();
        const digest = r.frame.subarray(Off.payloadDigest, Off.payloadDigest + 32);
        const held = this.#payloads.lookup(digest);
        if (held < 0 || held <= droppedLsn) this.#payloads.insert(digest, r.lsn);
      }
      if (n === 0) continue;
      this.#makeRoom(n);
      const locations = this.findBlocks(r.blockDigests);
      for (let i = 0; i < n; i++) {
        if (!keeps(locations[i], droppedLsn)) {
          this.#index.insert(
            r.blockDigests.subarray(i * 32, i * 32 + 32),
            (r.lsn * PAYLOAD_BLOCKS + i) * 2 + 1,
          );
        }
      }
    }
  }

  /**
   * Indexes the partial last block of record `lsn` (its block `index`) by
   * `digest`, the BLAKE3 of that block zero-padded as a CP stores it, unless a
   * location the destination still holds has it.
   */
  addTail(digest: Uint8Array, lsn: number, index: number, droppedLsn = Infinity): void {
    this.#makeRoom(1);
    if (!keeps(this.#index.lookup(digest), droppedLsn)) {
      this.#index.insert(digest, (lsn * PAYLOAD_BLOCKS + index) * 2 + 1);
    }
  }

  /** The LSN of a record whose whole payload has this digest, or null (a hint). */
  findPayload(digest: Uint8Array): number | null {
    const lsn = this.#payloads.lookup(digest);
    return lsn < 0 ? null : lsn;
  }

  /** Indexes data blocks a committed CP wrote (digest -> volume block). */
  addVolumeBlocks(blocks: Array<{ block: number; digest: Uint8Array }>): void {
    this.#makeRoom(blocks.length);
    for (const { block, digest } of blocks) this.#index.insert(digest, block * 2);
  }

  /** Where a block with this digest may be, or null. */
  find(digest: Uint8Array): BlockLocation | null {
    const loc = this.#index.lookup(digest);
    return loc < 0 ? null : locationOf(loc);
  }

  /**
   * The encoded locations of the blocks of a payload, `digests` 32 bytes a
   * block (at most 256 blocks), -1 where none: one call into the index for
   * them all, and no object for the blocks not found (most of them). Valid
   * until the next call; {@link locationOf} reads one.
   */
  findBlocks(digests: Uint8Array): Float64Array {
    const out = this.#found.subarray(0, digests.length / 32);
    this.#index.lookupBatch(digests, out);
    return out;
  }

  #makeRoom(n: number): void {
    if (this.#index.size + n > this.#maxEntries) this.#index.clear();
  }
}

/**
 * The place an encoded location names (see the module's location encoding).
 *
 * @example
 * ```ts
 * locationOf(14); // { kind: "volume", block: 7 }
 * ```
 */
export function locationOf(loc: number): BlockLocation {
  if (loc % 2 === 0) return { kind: "volume", block: loc / 2 };
  const x = (loc - 1) / 2;
  return {
    kind: "log",
    lsn: Math.floor(x / PAYLOAD_BLOCKS),
    payloadOffset: (x % PAYLOAD_BLOCKS) * BLOCK_SIZE,
  };
}

/** True when the held location `loc` (-1: none) is kept over a new one: a volume block, or log above `droppedLsn`. */
function keeps(loc: number, droppedLsn: number): boolean {
  return loc >= 0 && (loc % 2 === 0 || Math.floor((loc - 1) / 2 / PAYLOAD_BLOCKS) > droppedLsn);
}

/** True when `bytes` hash to `digest` (a hint is used only after this check). */
export function contentMatches(bytes: Uint8Array, digest: Uint8Array): boolean {
  return equalBytes(blake3(bytes), digest);
}

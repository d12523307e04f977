/**
 * The block digests of records the log appended from verified frames, kept
 * until the records leave the log, so that reading a run of their blocks back
 * (the destination's LOG_REF at CP apply) need not hash it again.
 *
 * What is kept is only as good as the bytes read back: each block keeps the
 * CRC-32 of its bytes as they were verified, and a run is answered only when
 * every block read back has that CRC (a flip at rest between receipt and CP
 * is caught; the caller then hashes the bytes it read, whose digests fail the
 * reference's check). CRC-32 here runs at tens of GB/s; BLAKE3 at about 2.
 * A miss (not kept, evicted, a CRC that differs) costs the hash, never an
 * answer.
 *
 * Memory is bounded by `maxBlocks` (36 bytes per 4 KiB block): past it, the
 * oldest records are forgotten first.
 *
 * @example
 * ```ts
 * import { hashBlocks } from "../../hash/blake3.ts";
 * const payload = new Uint8Array(3 * 4096).fill(7);
 * const held = new HeldDigests(1024);
 * held.keep(5, payload, hashBlocks(payload));
 * held.match(5, 4096, payload.subarray(4096, 12288)); // the digests of blocks 1 and 2
 * held.match(5, 0, new Uint8Array(4096)); // null: not the bytes kept
 * ```
 *
 * @module
 */
import { crc32 } from "node:zlib";
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { DIGEST_SIZE } from "../../hash/blake3.ts";

/** Default bound: 2^18 blocks (1 GiB of log, 9 MiB of memory). */
export const DEFAULT_HELD_BLOCKS = 1 << 18;

interface Held {
  /** 32 bytes per full 4 KiB block at a 4 KiB-aligned payload position. */
  digests: Uint8Array;
  /** The CRC-32 of each of those blocks. */
  crcs: Uint32Array;
}

/** See the module documentation. */
export class HeldDigests {
  /** Most blocks kept at once. */
  readonly maxBlocks: number;
  /** By LSN, in LSN order (records are kept as they are appended). */
  readonly #byLsn = new Map<number, Held>();
  #blocks = 0;

  constructor(maxBlocks: number = DEFAULT_HELD_BLOCKS) {
    assert(Number.isSafeInteger(maxBlocks) && maxBlocks >= 0, `maxBlocks ${maxBlocks}`);
    this.maxBlocks = maxBlocks;
  }

  /** Blocks kept now (at most {@link HeldDigests.maxBlocks}). */
  get blocks(): number {
    return this.#blocks;
  }

  /** Keeps record `lsn`'s block digests with the CRC of each block of `payload`. */
  keep(lsn: number, payload: Uint8Array, digests: Uint8Array): void {
    const n = digests.length / DIGEST_SIZE;
    assert(n === Math.floor(payload.length / BLOCK_SIZE), "one digest per full payload block");
    if (n === 0 || n > this.maxBlocks) return;
    this.#forget(lsn);
    const crcs = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      crcs[i] = crc32(payload.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
    }
    this.#byLsn.set(lsn, { digests, crcs });
    this.#blocks += n;
    this.#forgetOldest(() => this.#blocks <= this.maxBlocks);
  }

  /**
   * The digests (a view) of the blocks of record `lsn`'s payload from `at` that
   * `bytes` holds (whole blocks), when they are the bytes kept; else null.
   */
  match(lsn: number, at: number, bytes: Uint8Array): Uint8Array | null {
    const held = this.#byLsn.get(lsn);
    if (!held || at % BLOCK_SIZE !== 0 || bytes.length % BLOCK_SIZE !== 0) return null;
    const first = at / BLOCK_SIZE;
    const n = bytes.length / BLOCK_SIZE;
    if (first + n > held.crcs.length) return null;
    for (let i = 0; i < n; i++) {
      if (crc32(bytes.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE)) !== held.crcs[first + i]) {
        return null;
      }
    }
    return held.digests.subarray(first * DIGEST_SIZE, (first + n) * DIGEST_SIZE);
  }

  /** Forgets the records below LSN `first` (their segments were dropped). */
  dropBelow(first: number): void {
    this.#forgetOldest((lsn) => lsn >= first);
  }

  /** Forgets the records above LSN `last` (the log was truncated after it). */
  dropAbove(last: number): void {
    for (const [lsn] of this.#byLsn) if (lsn > last) this.#forget(lsn);
  }

  /** Forgets everything (the log was reset). */
  clear(): void {
    this.#byLsn.clear();
    this.#blocks = 0;
  }

  /** Forgets records from the oldest on until `enough` says stop (given the oldest left). */
  #forgetOldest(enough: (oldest: number) => boolean): void {
    for (const lsn of this.#byLsn.keys()) {
      if (enough(lsn)) return;
      this.#forget(lsn);
    }
  }

  #forget(lsn: number): void {
    const held = this.#byLsn.get(lsn);
    if (!held) return;
    this.#byLsn.delete(lsn);
    this.#blocks -= held.crcs.length;
  }
}

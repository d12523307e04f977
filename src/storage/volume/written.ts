/**
 * The blocks one CP wrote, in compact columns: block number, the block it
 * replaces, its kind, its digest, and how it was built from the log. A CP of a
 * 1 GiB object writes 262,144 blocks; as objects in Maps that bookkeeping took
 * ~600 bytes a block, here it is ~60, so a CP's memory stays bounded by
 * configuration rather than by object size.
 *
 * @module
 */
import type { BlockKind } from "./types.ts";

/** A piece of a block that comes from a log record's payload. */
export interface LogSlice {
  /** Offset inside the 4 KiB block. */
  at: number;
  length: number;
  lsn: number;
  /** Offset inside the record's payload. */
  payloadOffset: number;
}

/** How a written block was built, so the destination can build it too. */
export type BlockRecipe =
  | { kind: "log"; lsn: number; payloadOffset: number }
  | { kind: "patch"; base: number; slices: LogSlice[] };

const META = 1;
const HAS_DIGEST = 2;
const FROM_LOG = 4;

/**
 * Growable columns of the blocks of one CP.
 *
 * @example
 * ```ts
 * const digest = new Uint8Array(32);
 * const w = new WrittenBlocks();
 * const row = w.add(17, "data", 0);
 * w.setDigest(row, digest);
 * w.setLog(row, 42, 8192);
 * for (const r of w.rowsByBlock()) console.log(w.block(r));
 * ```
 */
export class WrittenBlocks {
  #count = 0;
  #block = new Uint32Array(64);
  #base = new Uint32Array(64);
  #flags = new Uint8Array(64);
  #lsn = new Float64Array(64);
  #payloadOffset = new Uint32Array(64);
  #digests = new Uint8Array(64 * 32);
  #patches = new Map<number, LogSlice[]>();
  #byBlock: Uint32Array | null = null;

  /** Rows written so far. */
  get count(): number {
    return this.#count;
  }

  /** Appends a row; returns its index. */
  add(block: number, kind: BlockKind, base: number): number {
    if (this.#count === this.#block.length) this.#grow();
    const row = this.#count++;
    this.#block[row] = block;
    this.#base[row] = base;
    this.#flags[row] = kind === "meta" ? META : 0;
    this.#byBlock = null;
    return row;
  }

  block(row: number): number {
    return this.#block[row];
  }

  /** The block this one replaces (its previous version), or 0. */
  base(row: number): number {
    return this.#base[row];
  }

  kind(row: number): BlockKind {
    return this.#flags[row] & META ? "meta" : "data";
  }

  setDigest(row: number, digest: Uint8Array): void {
    this.#digests.set(digest.subarray(0, 32), row * 32);
    this.#flags[row] |= HAS_DIGEST;
  }

  hasDigest(row: number): boolean {
    return (this.#flags[row] & HAS_DIGEST) !== 0;
  }

  /** The block's BLAKE3 (a view: copy it to keep it past the next write). */
  digest(row: number): Uint8Array {
    if (!this.hasDigest(row)) {
      throw new Error(`invariant: block ${this.#block[row]} has no digest yet`);
    }
    return this.#digests.subarray(row * 32, row * 32 + 32);
  }

  /** The block is 4 KiB of log record `lsn`'s payload from `payloadOffset`. */
  setLog(row: number, lsn: number, payloadOffset: number): void {
    this.#flags[row] |= FROM_LOG;
    this.#lsn[row] = lsn;
    this.#payloadOffset[row] = payloadOffset;
  }

  /** The block is its previous version (`base`, 0 for zeros) with log slices laid over it. */
  setPatch(row: number, slices: LogSlice[]): void {
    this.#patches.set(row, slices);
  }

  /** How the block was built, or null (metadata, or rebuilt from the volume). */
  recipe(row: number): BlockRecipe | null {
    if (this.#flags[row] & FROM_LOG) {
      return { kind: "log", lsn: this.#lsn[row], payloadOffset: this.#payloadOffset[row] };
    }
    const slices = this.#patches.get(row);
    return slices ? { kind: "patch", base: this.#base[row], slices } : null;
  }

  /** Row indexes in ascending block order. */
  rowsByBlock(): Uint32Array {
    if (this.#byBlock === null) {
      const rows = new Uint32Array(this.#count);
      for (let r = 0; r < rows.length; r++) rows[r] = r;
      const block = this.#block;
      rows.sort((a, b) => block[a] - block[b]);
      this.#byBlock = rows;
    }
    return this.#byBlock;
  }

  /** The row that wrote `block`, or -1. */
  rowOf(block: number): number {
    const rows = this.rowsByBlock();
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#block[rows[mid]] < block) lo = mid + 1;
      else hi = mid;
    }
    return lo < rows.length && this.#block[rows[lo]] === block ? rows[lo] : -1;
  }

  #grow(): void {
    const n = Math.ceil(this.#block.length * 1.5);
    const grow = <T extends Uint32Array | Uint8Array | Float64Array>(a: T, size: number): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.#block = grow(this.#block, n);
    this.#base = grow(this.#base, n);
    this.#flags = grow(this.#flags, n);
    this.#lsn = grow(this.#lsn, n);
    this.#payloadOffset = grow(this.#payloadOffset, n);
    this.#digests = grow(this.#digests, n * 32);
  }
}

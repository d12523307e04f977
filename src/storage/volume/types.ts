/**
 * Shared vocabulary of the copy-on-write volume (blocks of `BLOCK_SIZE`, src/bytes): block pointers and
 * the two faces of a volume that the catalog and the block maps work against.
 *
 * @module
 */

/**
 * A pointer to a volume block, stamped with the CP in which the block was
 * written (its birth CP), so "what changed since CP n" is a tree walk.
 * `block === 0` means a hole: no block (reads as zeros). Block 0 is a
 * superblock slot, so it is never a data or metadata block.
 */
export interface BlockPtr {
  block: number;
  birth: number;
}

/** Encoded size of a {@link BlockPtr}: u32 block number, u32 birth CP. */
export const BLOCK_PTR_BYTES = 8;

/**
 * A block map entry: a {@link BlockPtr} that also carries the checksum of the
 * block it points to, as ZFS's block pointers do, so a read of a damaged (or
 * stale, or misdirected) block is caught by its parent and never served.
 * `check` is the first 8 bytes of the block's BLAKE3 as a little-endian u64
 * (`src/storage/volume/check.ts`); a hole has check 0.
 */
export interface CheckedPtr extends BlockPtr {
  check: bigint;
}

/** Encoded size of a {@link CheckedPtr}: u32 block number, u32 birth CP, u64 check. */
export const CHECKED_PTR_BYTES = 16;

/** The hole pointer: no block. */
export const NO_BLOCK: CheckedPtr = Object.freeze({ block: 0, birth: 0, check: 0n });

/**
 * Writes `ptr` at `offset` of `view`.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(8);
 * writeBlockPtr(new DataView(buf.buffer), 0, { block: 7, birth: 3 });
 * ```
 */
export function writeBlockPtr(view: DataView, offset: number, ptr: BlockPtr): void {
  view.setUint32(offset, ptr.block, true);
  view.setUint32(offset + 4, ptr.birth, true);
}

/**
 * Reads the {@link BlockPtr} at `offset` of `view`.
 *
 * @example
 * ```ts
 * const ptr = readBlockPtr(new DataView(new ArrayBuffer(8)), 0); // the hole
 * ```
 */
export function readBlockPtr(view: DataView, offset: number): BlockPtr {
  return { block: view.getUint32(offset, true), birth: view.getUint32(offset + 4, true) };
}

/**
 * Writes the block map entry `ptr` at `offset` of `view`.
 *
 * @example
 * ```ts
 * const buf = new Uint8Array(CHECKED_PTR_BYTES);
 * writeCheckedPtr(new DataView(buf.buffer), 0, { block: 7, birth: 3, check: 0x1234n });
 * ```
 */
export function writeCheckedPtr(view: DataView, offset: number, ptr: CheckedPtr): void {
  writeBlockPtr(view, offset, ptr);
  view.setBigUint64(offset + 8, ptr.check, true);
}

/**
 * Reads the block map entry at `offset` of `view`.
 *
 * @example
 * ```ts
 * const ptr = readCheckedPtr(new DataView(new ArrayBuffer(CHECKED_PTR_BYTES)), 0); // the hole
 * ```
 */
export function readCheckedPtr(view: DataView, offset: number): CheckedPtr {
  return {
    block: view.getUint32(offset, true),
    birth: view.getUint32(offset + 4, true),
    check: view.getBigUint64(offset + 8, true),
  };
}

/** What a block holds; the CP sync picks its record kinds by it. */
export type BlockKind = "data" | "meta";

/** Read access to the blocks of the last committed CP. */
export interface BlockReader {
  /**
   * Returns the 4096 bytes of `block`. The array may be shared with a cache:
   * callers must not modify it.
   */
  readBlock(block: number): Uint8Array;
}

/**
 * The allocation and write side of one CP in progress. Copy-on-write: a block
 * live in the last committed CP is never handed out by {@link CpWriter.allocate}.
 */
export interface CpWriter extends BlockReader {
  /** The number of the CP being written: the birth CP of every block it writes. */
  readonly cp: number;
  /** A free block number: not live in the last committed CP nor allocated in this one. */
  allocate(): number;
  /**
   * Writes a full block (exactly `BLOCK_SIZE` bytes) of this CP. `base` is the
   * block this one replaces (its previous version), or 0; the CP sync uses it to
   * send metadata as a DIFF against a block the destination already holds.
   * `digest`, the block's BLAKE3 when the caller has it (it put the checksum in
   * the pointer), is kept for the CP digest so the block is not hashed again.
   */
  write(block: number, data: Uint8Array, kind: BlockKind, base: number, digest?: Uint8Array): void;
  /** `block` is live in the last committed CP but not in this one: free after commit. */
  release(block: number): void;
}

/**
 * Block checksums: what a block map entry ({@link CheckedPtr}) carries about
 * the block it points to, and the domain error of a block that does not match.
 *
 * The check is the first 8 bytes of the block's standalone BLAKE3, the digest
 * every CP computes anyway for the chained volume digest, so writing a block
 * hashes it once. 64 bits only has to catch accidental damage (a random
 * corruption slips through with probability 2^-64); identity, where
 * collisions would matter, uses the full digest (the block locator) or the
 * 16-byte checks of the CP sync.
 *
 * @module
 */
import { blake3 } from "../../hash/blake3.ts";
import { RefsyncError } from "../../errors/mod.ts";
import type { CheckedPtr } from "./types.ts";

/**
 * The check of a block whose BLAKE3 is `digest`.
 *
 * @example
 * ```ts
 * import { blake3 } from "../../hash/blake3.ts";
 * const check = checkOf(blake3(new Uint8Array(4096).fill(1)));
 * ```
 */
export function checkOf(digest: Uint8Array): bigint {
  return new DataView(digest.buffer, digest.byteOffset, 8).getBigUint64(0, true);
}

/**
 * The check of `bytes` (one block): hashes them.
 *
 * @example
 * ```ts
 * const ptr = { block: 9, birth: 3, check: blockCheck(new Uint8Array(4096).fill(1)) };
 * ```
 */
export function blockCheck(bytes: Uint8Array): bigint {
  return checkOf(blake3(bytes));
}

/** What a damaged block held. */
export type CorruptKind = "data" | "map";

/**
 * A block whose bytes do not match the check in its pointer: the volume is
 * damaged there (a flipped bit, a torn or misdirected write). The domain error
 * `corrupt`: answered 500, never with the bytes.
 *
 * @example
 * ```ts
 * const e = new CorruptBlockError(42, "data", "photos/a.jpg");
 * e.code; // "corrupt"
 * ```
 */
export class CorruptBlockError extends RefsyncError {
  readonly block: number;
  readonly kind: CorruptKind;
  /** The object the block belongs to, when the reader knows it. */
  readonly key: string | null;

  constructor(block: number, kind: CorruptKind, key: string | null) {
    super(
      "corrupt",
      `${kind} block ${block}${
        key === null ? "" : ` of '${key}'`
      } does not match the checksum in its pointer: the volume is damaged there and its bytes are not served`,
    );
    this.block = block;
    this.kind = kind;
    this.key = key;
  }

  /** This error naming `key`, when it names no object yet (a map block read deep in a lookup). */
  of(key: string): CorruptBlockError {
    return this.key === null ? new CorruptBlockError(this.block, this.kind, key) : this;
  }
}

/**
 * Throws {@link CorruptBlockError} unless `bytes` match the check of `ptr`.
 *
 * @example
 * ```ts
 * const bytes = new Uint8Array(4096).fill(1);
 * assertBlock(bytes, { block: 9, birth: 3, check: blockCheck(bytes) }, "data", "a"); // passes
 * ```
 */
export function assertBlock(
  bytes: Uint8Array,
  ptr: CheckedPtr,
  kind: CorruptKind,
  key: string | null,
): void {
  if (blockCheck(bytes) !== ptr.check) throw new CorruptBlockError(ptr.block, kind, key);
}

/**
 * An object's ETag, derived from the standalone digests of its 4 KiB blocks:
 *
 *     BLAKE3("refsync-etag-1" ++ D0 ++ D1 ++ ... ++ Dn-1 ++ tail ++ u64 LE size)
 *
 * where `Di` is the BLAKE3 of the object's i-th full 4 KiB block alone and
 * `tail` its last `size % 4096` bytes. Why not the BLAKE3 of the bytes: the
 * block digests are computed anyway (log frames, block index, CP), and BLAKE3's
 * chunk counter makes a block's in-stream hash a second compression of its
 * bytes, so a plain digest would cost a second pass over every byte written;
 * this costs one pass over 1/128 of them. The size comes last so that a body of
 * unknown length is hashed as it streams, and it makes the encoding
 * unambiguous (it fixes how many digests and tail bytes precede it).
 *
 * Objects committed before this definition keep the plain BLAKE3 they were
 * given (an ETag is opaque; `refsync verify` accepts either, see ../verify.ts).
 *
 * @example
 * ```ts
 * import { etagOf, EtagHasher } from "./etag.ts";
 * const bytes = new Uint8Array(10_000);
 * const h = new EtagHasher();
 * h.update(bytes.subarray(0, 5000));
 * h.update(bytes.subarray(5000));
 * h.digest().toHex() === etagOf(bytes).toHex(); // true
 * ```
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { Blake3Hasher, DIGEST_SIZE, hashBlocks } from "../../hash/blake3.ts";

/** What the derivation hashes first: never the start of a digest of another kind. */
const ETAG_DOMAIN = new TextEncoder().encode("refsync-etag-1");

/** The ETag of an object's bytes fed in order: by their block digests, or as bytes. */
export class EtagHasher {
  readonly #h = new Blake3Hasher({ blockDigests: false });
  /** Bytes of a block not yet complete. */
  readonly #part = new Uint8Array(BLOCK_SIZE);
  #partLen = 0;
  #size = 0;
  #done = false;

  constructor() {
    this.#h.update(ETAG_DOMAIN);
  }

  /** Bytes fed so far. */
  get size(): number {
    return this.#size;
  }

  /**
   * Feeds the next `digests.length / 32` full blocks by their standalone
   * digests (as {@link hashBlocks} gives them), at a 4 KiB boundary.
   *
   * @example
   * ```ts
   * import { hashBlocks } from "../../hash/blake3.ts";
   * const h = new EtagHasher();
   * h.blocks(hashBlocks(new Uint8Array(8192))); // two blocks
   * h.size; // 8192
   * ```
   */
  blocks(digests: Uint8Array): void {
    assert(!this.#done, "EtagHasher: fed after digest()");
    assert(
      this.#partLen === 0,
      `EtagHasher: block digests at object offset ${this.#size}, which is not 4 KiB-aligned`,
    );
    assert(digests.length % DIGEST_SIZE === 0, `EtagHasher: ${digests.length} digest bytes`);
    this.#h.update(digests);
    this.#size += (digests.length / DIGEST_SIZE) * BLOCK_SIZE;
  }

  /** Feeds bytes: their full blocks are hashed here, a last partial block kept for later. */
  update(bytes: Uint8Array): void {
    assert(!this.#done, "EtagHasher: fed after digest()");
    this.#size += bytes.length;
    let pos = 0;
    if (this.#partLen > 0) {
      pos = Math.min(BLOCK_SIZE - this.#partLen, bytes.length);
      this.#part.set(bytes.subarray(0, pos), this.#partLen);
      this.#partLen += pos;
      if (this.#partLen < BLOCK_SIZE) return;
      this.#h.update(hashBlocks(this.#part));
      this.#partLen = 0;
    }
    const whole = bytes.length - pos - (bytes.length - pos) % BLOCK_SIZE;
    if (whole > 0) this.#h.update(hashBlocks(bytes.subarray(pos, pos + whole)));
    const rest = bytes.subarray(pos + whole);
    this.#part.set(rest, 0);
    this.#partLen = rest.length;
  }

  /** The ETag (32 bytes). Ends the hasher: nothing may be fed after it. */
  digest(): Uint8Array {
    assert(!this.#done, "EtagHasher: digest() twice");
    this.#done = true;
    this.#h.update(this.#part.subarray(0, this.#partLen));
    const size = new Uint8Array(8);
    new DataView(size.buffer).setBigUint64(0, BigInt(this.#size), true);
    this.#h.update(size);
    return this.#h.digest();
  }
}

/**
 * The ETag of `bytes` (a whole object).
 *
 * @example
 * ```ts
 * etagOf(new TextEncoder().encode("hello")).toHex().length; // 64
 * ```
 */
export function etagOf(bytes: Uint8Array): Uint8Array {
  const h = new EtagHasher();
  h.update(bytes);
  return h.digest();
}

/**
 * The one place the frame layer touches the BLAKE3 implementation, so that the
 * block index and the log agree on digests by construction.
 *
 * A payload digest is either BLAKE3(payload) (a one-record PUT's, which is its
 * ETag) or, with {@link Flag.BLOCK_DIGESTS}, derived from the standalone digests
 * of its 4 KiB blocks: BLAKE3's chunk counter makes a block's in-stream and
 * standalone hashes two passes over its bytes, and the block digests are needed
 * anyway (block index, CP), so such a frame costs one pass instead of two.
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { blake3, Blake3Hasher, hashBlocks } from "../../hash/blake3.ts";
import { DIGEST_LENGTH, Flag, HEADER_CHECKSUM_LENGTH, Off } from "./constants.ts";

/** Digest of a payload and the standalone digests of its full 4 KiB blocks. */
export interface PayloadHash {
  /** The payload digest (BLAKE3(payload), or derived from the block digests), 32 bytes. */
  digest: Uint8Array;
  /** 32 bytes per full 4 KiB block at a 4 KiB-aligned payload position, concatenated. */
  blockDigests: Uint8Array;
}

/** What a derived digest hashes first: never the start of a digest of another kind. */
const BLOCK_DIGESTS_DOMAIN = new TextEncoder().encode("refsync-blocks-1");

const usesBlockDigests = (flags: number) => (flags & Flag.BLOCK_DIGESTS) !== 0;

/**
 * Hashes a payload in ONE pass for a frame with these `flags`: with
 * BLOCK_DIGESTS the block digests, then the digest derived from them; else the
 * streaming hasher, whose block digests are a by-product of the payload's
 * BLAKE3 (a second compression of each block but the first, as the chunk
 * counter differs).
 *
 * @example
 * ```ts
 * import { Flag } from "./constants.ts";
 * const { digest, blockDigests } = hashPayload(new Uint8Array(8192), Flag.BLOCK_DIGESTS);
 * blockDigests.length; // 64: one digest per block
 * ```
 */
export function hashPayload(payload: Uint8Array, flags = 0): PayloadHash {
  if (usesBlockDigests(flags)) {
    const blockDigests = alignedBlockDigests(payload);
    return { digest: derivedDigest(payload, blockDigests), blockDigests };
  }
  const hasher = new Blake3Hasher();
  // Both are fresh copies (not views of wasm memory), so they may be kept.
  const blockDigests = hasher.update(payload);
  const digest = hasher.digest();
  assert(digest.length === DIGEST_LENGTH, "a BLAKE3 digest is 32 bytes");
  assert(
    blockDigests.length === Math.floor(payload.length / BLOCK_SIZE) * DIGEST_LENGTH,
    "one 32-byte digest per full 4 KiB payload block",
  );
  return { digest, blockDigests };
}

/**
 * What verifying a frame needs, in one pass: its payload digest, and the block
 * digests when they are how that digest is made (null otherwise: a frame that
 * needs them later hashes them then).
 */
export function verifyingDigest(
  payload: Uint8Array,
  flags: number,
): { digest: Uint8Array; blockDigests: Uint8Array | null } {
  if (usesBlockDigests(flags)) return hashPayload(payload, flags);
  return { digest: blake3(payload), blockDigests: null };
}

/** The standalone digests of the payload's full 4 KiB blocks, as {@link hashPayload} gives them. */
export function alignedBlockDigests(payload: Uint8Array): Uint8Array {
  return hashBlocks(payload.subarray(0, payload.length - payload.length % BLOCK_SIZE));
}

/** BLAKE3("refsync-blocks-1" ++ u64 length ++ block digests ++ tail): the length parses the rest. */
function derivedDigest(payload: Uint8Array, blockDigests: Uint8Array): Uint8Array {
  const length = new Uint8Array(8);
  new DataView(length.buffer).setBigUint64(0, BigInt(payload.length), true);
  const h = new Blake3Hasher({ blockDigests: false });
  h.update(BLOCK_DIGESTS_DOMAIN);
  h.update(length);
  h.update(blockDigests);
  h.update(payload.subarray(payload.length - payload.length % BLOCK_SIZE));
  return h.digest();
}

/** First 16 bytes of BLAKE3(header bytes 0..79 ++ key). */
export function headerChecksum(header: Uint8Array, key: Uint8Array): Uint8Array {
  const input = new Uint8Array(Off.headerChecksum + key.length);
  input.set(header.subarray(0, Off.headerChecksum), 0);
  input.set(key, Off.headerChecksum);
  return blake3(input).subarray(0, HEADER_CHECKSUM_LENGTH);
}

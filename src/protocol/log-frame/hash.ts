/**
 * The one place the frame layer touches the BLAKE3 implementation, so that the
 * block index and the log agree on digests by construction.
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { blake3, Blake3Hasher, hashBlocks } from "../../hash/blake3.ts";
import { DIGEST_LENGTH, HEADER_CHECKSUM_LENGTH, Off } from "./constants.ts";

/** Digest of a payload and the standalone digests of its full 4 KiB blocks. */
export interface PayloadHash {
  /** BLAKE3(payload), 32 bytes. */
  digest: Uint8Array;
  /** 32 bytes per full 4 KiB block at a 4 KiB-aligned payload position, concatenated. */
  blockDigests: Uint8Array;
}

/**
 * Hashes a payload in ONE pass: the streaming hasher yields the 4 KiB block
 * digests as a by-product of the whole-payload digest.
 */
export function hashPayload(payload: Uint8Array): PayloadHash {
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

/** BLAKE3(payload) alone: what verifying a frame needs (half the work of {@link hashPayload}). */
export function payloadDigest(payload: Uint8Array): Uint8Array {
  return blake3(payload);
}

/** The standalone digests of the payload's full 4 KiB blocks, as {@link hashPayload} gives them. */
export function alignedBlockDigests(payload: Uint8Array): Uint8Array {
  return hashBlocks(payload.subarray(0, payload.length - payload.length % BLOCK_SIZE));
}

/** First 16 bytes of BLAKE3(header bytes 0..79 ++ key). */
export function headerChecksum(header: Uint8Array, key: Uint8Array): Uint8Array {
  const input = new Uint8Array(Off.headerChecksum + key.length);
  input.set(header.subarray(0, Off.headerChecksum), 0);
  input.set(key, Off.headerChecksum);
  return blake3(input).subarray(0, HEADER_CHECKSUM_LENGTH);
}

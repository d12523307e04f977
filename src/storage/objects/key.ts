/**
 * Object keys: 1 to 1024 bytes of UTF-8, no NUL.
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";

/** Largest key in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * Keys that begin with U+10FFFF (the largest code point, so they sort after
 * every other key) belong to the appliance itself: the S3 face keeps its
 * buckets and multipart parts there. The client APIs refuse them and their
 * listings stop before them.
 */
export const RESERVED_PREFIX = "\u{10FFFF}";

/**
 * True for a key in the appliance's own namespace ({@link RESERVED_PREFIX}).
 *
 * @example
 * ```ts
 * isReservedKey("\u{10FFFF}s3/bucket/b"); // true
 * ```
 */
export function isReservedKey(key: string): boolean {
  return key.startsWith(RESERVED_PREFIX);
}

const encoder = new TextEncoder();

/**
 * Validates `key` and returns its UTF-8 bytes; throws a `bad_key` {@link RefsyncError}
 * that says what is wrong.
 *
 * @example
 * ```ts
 * const bytes = encodeKey("photos/2026/a.jpg");
 * ```
 */
export function encodeKey(key: string): Uint8Array {
  if (key.length === 0) {
    throw new RefsyncError("bad_key", "the key is empty; use /v1/objects/{key}");
  }
  if (key.includes("\0")) {
    throw new RefsyncError("bad_key", "the key contains a NUL character");
  }
  if (/[\ud800-\udfff]/u.test(key.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ""))) {
    throw new RefsyncError("bad_key", "the key is not valid UTF-8 (lone surrogate)");
  }
  const bytes = encoder.encode(key);
  if (bytes.length > MAX_KEY_BYTES) {
    throw new RefsyncError(
      "bad_key",
      `the key is ${bytes.length} bytes of UTF-8; at most ${MAX_KEY_BYTES} are allowed`,
    );
  }
  return bytes;
}

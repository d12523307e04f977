/**
 * Object keys: 1 to 1024 bytes of UTF-8, no NUL.
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";

/** Largest key in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

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

/**
 * Bytes every layer shares: the 4 KiB block (of the volume, of the hash
 * kernel, of CP sync records) and byte-string helpers. Keys are ordered by
 * unsigned byte comparison (memcmp order), which for UTF-8 is code point
 * order. JavaScript string comparison orders UTF-16 code units instead, so
 * keys are never compared as strings.
 *
 * @example
 * ```ts
 * import { BLOCK_SIZE, compareBytes, equalBytes } from "./mod.ts";
 *
 * const blocks = Math.ceil(10_000 / BLOCK_SIZE); // 3
 * const enc = new TextEncoder();
 * console.log(blocks, compareBytes(enc.encode("a"), enc.encode("b")), equalBytes(enc.encode("a"), enc.encode("a")));
 * ```
 *
 * @module
 */

/** Size of a block: the volume's unit, and 4 BLAKE3 chunks. */
export const BLOCK_SIZE = 4096;

/**
 * Compares two byte strings in unsigned byte (memcmp) order: a proper prefix
 * sorts first. Returns -1, 0 or 1.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * // U+1F600 sorts after U+FFFF in UTF-8, though not as a JS string.
 * compareBytes(enc.encode("\u{1F600}"), enc.encode("\uFFFF")); // 1
 * compareBytes(enc.encode("a"), enc.encode("ab")); // -1
 * ```
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/**
 * True when `key` starts with `prefix`.
 *
 * @example
 * ```ts
 * hasPrefix(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2])); // true
 * ```
 */
export function hasPrefix(key: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > key.length) return false;
  for (let i = 0; i < prefix.length; i++) {
    if (key[i] !== prefix[i]) return false;
  }
  return true;
}

/**
 * True when `a` and `b` hold the same bytes.
 *
 * @example
 * ```ts
 * equalBytes(new Uint8Array([1]), new Uint8Array([1])); // true
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

/**
 * The bytes of `parts`, one after another, in a new array.
 *
 * @example
 * ```ts
 * concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Byte comparisons the tests report with: where two byte strings first
 * differ (a short message instead of a multi-MiB diff), and the order keys
 * are listed in.
 *
 * @example
 * ```ts
 * import { compareUtf8, firstDifference } from "./bytes.ts";
 *
 * firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 3])); // 1
 * ["b", "a"].sort(compareUtf8); // ["a", "b"]
 * ```
 *
 * @module
 */
import { compareBytes } from "../../src/bytes/mod.ts";

/** Index of the first differing byte, or -1 when equal (lengths included). */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** UTF-8 byte order of two strings (the order of keys in the catalog and in `list`). */
export function compareUtf8(a: string, b: string): number {
  const enc = new TextEncoder();
  return compareBytes(enc.encode(a), enc.encode(b));
}

/**
 * Sizes as people write them on a command line: `4096`, `512KiB`, `64MiB`,
 * `1.5G`, `5GiB` (binary units, case-insensitive; `B`, `KB`, `KiB` and `K`
 * are the same). The appliance flags and the benchmark's both read them.
 *
 * @example
 * ```ts
 * import { parseSize } from "./size.ts";
 *
 * parseSize("64MiB"); // 67108864
 * parseSize("1.5G"); // 1610612736
 * parseSize("lots"); // null
 * ```
 *
 * @module
 */

const SCALE = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 } as const;

/** Bytes of `text` (rounded down), or null when it is not a size. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(text.trim());
  if (!m) return null;
  const unit = (m[2] ?? "b").toLowerCase()[0] as keyof typeof SCALE;
  return Math.floor(Number(m[1]) * SCALE[unit]);
}

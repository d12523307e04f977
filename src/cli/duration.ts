/**
 * Durations as people write them on a command line: `250` (ms), `500ms`,
 * `30s`, `10m`, `6h`, `1d` (case-insensitive).
 *
 * @example
 * ```ts
 * import { parseDuration } from "./duration.ts";
 *
 * parseDuration("10m"); // 600000
 * parseDuration("250"); // 250
 * parseDuration("soon"); // null
 * ```
 *
 * @module
 */

const SCALE: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of `text` (rounded down), or null when it is not a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  if (!m) return null;
  return Math.floor(Number(m[1]) * SCALE[(m[2] ?? "ms").toLowerCase()]);
}

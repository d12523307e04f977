/**
 * u64 fields as JS numbers: LSNs, offsets and times stay below 2^53, and a
 * larger stored value is refused rather than rounded.
 *
 * @module
 */
import { assert } from "../../assert.ts";

const TWO32 = 2 ** 32;
/** Largest high word that keeps hi * 2^32 + lo a safe integer. */
const MAX_HI = 0x1fffff;

/** Writes a safe non-negative integer as a little-endian u64. */
export function setU64(view: DataView, at: number, v: number): void {
  assert(Number.isSafeInteger(v) && v >= 0, `${v} is a safe u64`);
  view.setUint32(at, v % TWO32, true);
  view.setUint32(at + 4, Math.floor(v / TWO32), true);
}

/** Reads a little-endian u64; returns undefined when it exceeds 2^53 - 1. */
export function getU64(view: DataView, at: number): number | undefined {
  const lo = view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  return hi > MAX_HI ? undefined : hi * TWO32 + lo;
}

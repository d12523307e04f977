/**
 * `Range` (reads) and `Content-Range` (ranged writes) header parsing, as
 * RFC 9110 §14 has them: the unit is case-insensitive; a read's last byte
 * past the end is clamped; a `Range` this server does not serve (not
 * syntactically one byte range: another unit, several ranges, garbage) is
 * ignored and the whole object is sent, which RFC 9110 allows.
 *
 * @module
 */
import { RefsyncError } from "../errors/mod.ts";

/** A byte range `[start, end)`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header against an object of `size` bytes. Returns null for
 * the whole object: no header, or one that is not a single byte range.
 * Throws `range_not_satisfiable` (416) for a range that starts at or past
 * the end, or the empty suffix `bytes=-0`.
 *
 * @example
 * ```ts
 * parseRange("bytes=0-99", 1000); // { start: 0, end: 100 }
 * parseRange("Bytes=990-5000", 1000); // { start: 990, end: 1000 }
 * parseRange("bytes=-10", 1000);  // { start: 990, end: 1000 }
 * parseRange("bytes=0-1,5-6", 1000); // null: the whole object
 * ```
 */
export function parseRange(header: string | undefined | null, size: number): ByteRange | null {
  if (header === undefined || header === null) return null;
  const m = /^bytes=(\d*)-(\d*)$/i.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  const unsatisfiable = () =>
    new RefsyncError(
      "range_not_satisfiable",
      `Range '${header.slice(0, 100)}' is outside the object of ${size} bytes`,
    );
  // Numbers past 2^53 stay comparable as floats (or Infinity): a first byte that far is
  // past any object, and a last byte that far is clamped.
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable();
    // A suffix of an empty object is satisfiable and empty: the whole (empty) object.
    if (size === 0) return null;
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (last < start) return null; // not a valid byte range: ignored
  if (start >= size) throw unsatisfiable();
  return { start, end: Math.min(last, size - 1) + 1 };
}

/** A ranged write's `Content-Range`: the bytes `[start, end)` and the announced object size. */
export interface ContentRange extends ByteRange {
  /** The complete length N of `bytes a-b/N`, or null for `*`. */
  total: number | null;
}

/**
 * Parses a ranged write's `Content-Range: bytes FIRST-LAST/*` or
 * `bytes FIRST-LAST/SIZE`; SIZE must be past LAST (whether it is the
 * object's size after the write is checked when the write is applied).
 *
 * @example
 * ```ts
 * parseContentRange("bytes 100-199/*"); // { start: 100, end: 200, total: null }
 * parseContentRange("bytes 0-9/10"); // { start: 0, end: 10, total: 10 }
 * ```
 */
export function parseContentRange(header: string): ContentRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/i.exec(header.trim());
  if (!m) {
    throw new RefsyncError(
      "bad_range",
      `malformed Content-Range '${header.slice(0, 100)}'; use 'bytes FIRST-LAST/*'`,
    );
  }
  const start = safeInt(m[1], header);
  const last = safeInt(m[2], header);
  if (last < start) {
    throw new RefsyncError(
      "bad_range",
      `malformed Content-Range '${header}': last byte before first`,
    );
  }
  const total = m[3] === "*" ? null : safeInt(m[3], header);
  if (total !== null && total <= last) {
    throw new RefsyncError(
      "bad_range",
      `malformed Content-Range '${header}': length not past last byte`,
    );
  }
  return { start, end: last + 1, total };
}

function safeInt(digits: string, header: string): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || digits.length > 16) {
    throw new RefsyncError("bad_range", `number too large in '${header.slice(0, 100)}'`);
  }
  return n;
}

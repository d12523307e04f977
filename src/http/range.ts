/**
 * `Range` (reads) and `Content-Range` (ranged writes) header parsing. Only
 * single byte ranges are supported; anything else is a clear 400 or 416.
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
 * Parses a `Range` header against an object of `size` bytes. Returns null when
 * there is no header (the whole object).
 *
 * @example
 * ```ts
 * parseRange("bytes=0-99", 1000); // { start: 0, end: 100 }
 * parseRange("bytes=-10", 1000);  // { start: 990, end: 1000 }
 * ```
 */
export function parseRange(header: string | undefined | null, size: number): ByteRange | null {
  if (header === undefined || header === null) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) {
    throw new RefsyncError(
      "bad_range",
      `malformed Range '${
        header.slice(0, 100)
      }'; use bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX (one range)`,
    );
  }
  const unsatisfiable = () =>
    new RefsyncError(
      "range_not_satisfiable",
      `Range '${header}' is outside the object of ${size} bytes`,
    );
  if (m[1] === "") {
    const suffix = safeInt(m[2], header);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return { start: Math.max(0, size - suffix), end: size };
  }
  const start = safeInt(m[1], header);
  const last = m[2] === "" ? size - 1 : safeInt(m[2], header);
  if (m[2] !== "" && last < start) {
    throw new RefsyncError("bad_range", `malformed Range '${header}': last byte before first`);
  }
  if (start >= size) throw unsatisfiable();
  return { start, end: Math.min(last + 1, size) };
}

/**
 * Parses a ranged write's `Content-Range: bytes FIRST-LAST/*` (a number may
 * stand for `*`; it must then be larger than LAST).
 *
 * @example
 * ```ts
 * parseContentRange("bytes 100-199/*"); // { start: 100, end: 200 }
 * ```
 */
export function parseContentRange(header: string): ByteRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
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
  if (m[3] !== "*" && safeInt(m[3], header) <= last) {
    throw new RefsyncError(
      "bad_range",
      `malformed Content-Range '${header}': length not past last byte`,
    );
  }
  return { start, end: last + 1 };
}

function safeInt(digits: string, header: string): number {
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || digits.length > 16) {
    throw new RefsyncError("bad_range", `number too large in '${header.slice(0, 100)}'`);
  }
  return n;
}

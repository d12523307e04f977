/**
 * Dirty objects: writes logged since the last CP, kept as extents that point
 * into the NVLOG rather than as bytes in memory. Memory grows with the number
 * of writes, not their size; the CP copies the bytes from the log into the
 * volume.
 *
 * The store keeps two layers of these: `active` (new writes) and `frozen`
 * (the CP being written). A layer whose object is not `replace`d lies on top
 * of the layers below it and of the committed catalog record.
 *
 * @module
 */

/** Where an extent's bytes are in the NVLOG. */
export interface LogPosition {
  segment: number;
  payloadOffset: number;
}

/**
 * Object bytes `[start, end)` come from the payload of log record `lsn`,
 * starting at payload byte `payloadStart`.
 */
export interface Extent {
  start: number;
  end: number;
  lsn: number;
  position: LogPosition;
  payloadStart: number;
  /**
   * Standalone BLAKE3 digests of the payload's 4 KiB-aligned full blocks,
   * computed once when the record was logged (32 bytes each, by payload
   * block index); the CP reuses them instead of hashing again.
   */
  blockDigests: Uint8Array | null;
}

/** One object's writes within one layer. */
export interface DirtyObject {
  key: string;
  keyBytes: Uint8Array;
  /** The object was deleted (and not written again in this layer). */
  deleted: boolean;
  /** Lower layers and the committed record are discarded (whole PUT, delete). */
  replace: boolean;
  size: number;
  mtime: number;
  /** BLAKE3 of the object's bytes, or null until computed (after ranged writes). */
  etag: Uint8Array | null;
  /** The metadata blob of a whole PUT that carried one, else null (a ranged write drops it). */
  meta: Uint8Array | null;
  /** Sorted, non-overlapping. */
  extents: Extent[];
  lastLsn: number;
}

/**
 * Lays `e` over `extents` (sorted, non-overlapping): newer bytes win, older
 * extents are trimmed or split.
 *
 * @example
 * ```ts
 * declare const extent: Extent;
 * const list: Extent[] = [];
 * addExtent(list, extent); // list stays sorted and non-overlapping
 * ```
 */
export function addExtent(extents: Extent[], e: Extent): void {
  if (e.end <= e.start) return;
  // First extent that ends after e starts.
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (extents[mid].end <= e.start) lo = mid + 1;
    else hi = mid;
  }
  const replaced: Extent[] = [];
  let i = lo;
  while (i < extents.length && extents[i].start < e.end) {
    const old = extents[i];
    if (old.start < e.start) replaced.push({ ...old, end: e.start });
    if (old.end > e.end) {
      replaced.push({
        ...old,
        start: e.end,
        payloadStart: old.payloadStart + (e.end - old.start),
      });
    }
    i++;
  }
  const before = replaced.filter((x) => x.start < e.start);
  const after = replaced.filter((x) => x.start >= e.end);
  extents.splice(lo, i - lo, ...before, e, ...after);
}

/** Bytes covered by `extents`. */
export function extentBytes(extents: Extent[]): number {
  let n = 0;
  for (const e of extents) n += e.end - e.start;
  return n;
}

/**
 * The catalog record of one committed object: size, mtime, ETag, block map and
 * an optional metadata blob.
 *
 * Layout (little-endian): `u64 size, u64 mtime, 32-byte etag (BLAKE3 of the
 * object's bytes)`, then the block map ({@link encodeMap}), then, only when
 * the object has one, `u16 length` + the metadata blob. Records written before
 * the blob existed end after the map and decode with no metadata.
 *
 * @module
 */
import {
  type BlockMap,
  decodeMap,
  encodeMap,
  INLINE_POINTERS,
  mapEncodedSize,
} from "../blockmap/blockmap.ts";
import { MAX_VALUE_BYTES } from "../catalog/mod.ts";
import { CHECKED_PTR_BYTES } from "../volume/types.ts";

/**
 * The ETag stored for an object whose bytes were not hashed at commit (after
 * ranged writes: hashing the whole object at every CP would cost more than the
 * writes). Readers compute it on first use.
 */
export const UNKNOWN_ETAG: Uint8Array = new Uint8Array(32);

/** True unless `etag` is {@link UNKNOWN_ETAG}. */
export function isKnownEtag(etag: Uint8Array): boolean {
  return etag.some((b) => b !== 0);
}

/**
 * Largest metadata blob an object may carry: the record (with the largest
 * inline map) must stay within a catalog value.
 */
export const MAX_META_BYTES = 384;

if (48 + 2 + INLINE_POINTERS * CHECKED_PTR_BYTES + 2 + MAX_META_BYTES > MAX_VALUE_BYTES) {
  throw new Error("invariant: the largest object record must fit in a catalog value");
}

/** A committed object as the catalog stores it. */
export interface ObjectRecord {
  size: number;
  mtime: number;
  etag: Uint8Array;
  map: BlockMap;
  /** Opaque bytes written with the object (owned by the API that wrote them), or null. */
  meta: Uint8Array | null;
}

/**
 * Encodes `record` as a catalog value.
 *
 * @example
 * ```ts
 * import { EMPTY_MAP } from "../blockmap/blockmap.ts";
 * const etag = new Uint8Array(32);
 * const value = encodeRecord({ size: 0, mtime: Date.now(), etag, map: EMPTY_MAP, meta: null });
 * ```
 */
export function encodeRecord(record: ObjectRecord): Uint8Array {
  const meta = record.meta;
  if (meta && meta.length > MAX_META_BYTES) {
    throw new Error(`invariant: metadata of ${meta.length} bytes (at most ${MAX_META_BYTES})`);
  }
  const mapEnd = 48 + mapEncodedSize(record.map);
  const out = new Uint8Array(mapEnd + (meta ? 2 + meta.length : 0));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(record.size), true);
  view.setBigUint64(8, BigInt(record.mtime), true);
  out.set(record.etag, 16);
  encodeMap(view, 48, record.map);
  if (meta) {
    view.setUint16(mapEnd, meta.length, true);
    out.set(meta, mapEnd + 2);
  }
  return out;
}

/** Decodes a catalog value written by {@link encodeRecord}. */
export function decodeRecord(value: Uint8Array): ObjectRecord {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const map = decodeMap(view, 48);
  const mapEnd = 48 + mapEncodedSize(map);
  let meta: Uint8Array | null = null;
  if (value.length > mapEnd) {
    const n = view.getUint16(mapEnd, true);
    if (mapEnd + 2 + n !== value.length) {
      throw new Error(`catalog record: metadata of ${n} bytes does not fill the record`);
    }
    meta = value.slice(mapEnd + 2);
  }
  return {
    size: Number(view.getBigUint64(0, true)),
    mtime: Number(view.getBigUint64(8, true)),
    etag: value.slice(16, 48),
    map,
    meta,
  };
}

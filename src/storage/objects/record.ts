/**
 * The catalog record of one committed object: size, mtime, ETag and block map.
 *
 * Layout (little-endian): `u64 size, u64 mtime, 32-byte etag (BLAKE3 of the
 * object's bytes)`, then the block map ({@link encodeMap}).
 *
 * @module
 */
import { type BlockMap, decodeMap, encodeMap, mapEncodedSize } from "../blockmap/blockmap.ts";

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

/** A committed object as the catalog stores it. */
export interface ObjectRecord {
  size: number;
  mtime: number;
  etag: Uint8Array;
  map: BlockMap;
}

/**
 * Encodes `record` as a catalog value.
 *
 * @example
 * ```ts
 * import { EMPTY_MAP } from "../blockmap/blockmap.ts";
 * const etag = new Uint8Array(32);
 * const value = encodeRecord({ size: 0, mtime: Date.now(), etag, map: EMPTY_MAP });
 * ```
 */
export function encodeRecord(record: ObjectRecord): Uint8Array {
  const out = new Uint8Array(48 + mapEncodedSize(record.map));
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(record.size), true);
  view.setBigUint64(8, BigInt(record.mtime), true);
  out.set(record.etag, 16);
  encodeMap(view, 48, record.map);
  return out;
}

/** Decodes a catalog value written by {@link encodeRecord}. */
export function decodeRecord(value: Uint8Array): ObjectRecord {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return {
    size: Number(view.getBigUint64(0, true)),
    mtime: Number(view.getBigUint64(8, true)),
    etag: value.slice(16, 48),
    map: decodeMap(view, 48),
  };
}

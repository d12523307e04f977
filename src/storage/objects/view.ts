/**
 * A read view of one object: its dirty layers (newest first) over its
 * committed catalog record, and how to fill a byte range from them. The view
 * copies the layers' extent lists, so writes after it was taken do not change
 * what it reads (the store pins the blocks and log it points into).
 *
 * Every committed block read is checked against the checksum in its map
 * entry before its bytes are used: a damaged block is the error `corrupt`
 * (logged at error with the block and the key), never bytes. Reads in
 * {@link readChunk}'s pieces touch each block once, so none is hashed twice.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import type { Logger } from "../../logging/mod.ts";
import { lookupRange } from "../blockmap/blockmap.ts";
import type { Catalog } from "../catalog/mod.ts";
import { assertBlock, CorruptBlockError } from "../volume/check.ts";
import type { BlockReader } from "../volume/types.ts";
import type { PayloadReader } from "./checkpoint.ts";
import { EtagHasher } from "./etag.ts";
import { encodeKey } from "./key.ts";
import type { DirtyObject, Extent } from "./overlay.ts";
import { decodeRecord, isKnownEtag, type ObjectRecord } from "./record.ts";

/** An object as a reader sees it now. */
export interface View {
  key: string;
  /** Extent lists from the newest layer down; reading stops below a `replace` layer. */
  layers: Array<{ extents: Extent[]; replace: boolean }>;
  /** The committed record under the layers, or null (none, or hidden by a replace). */
  record: ObjectRecord | null;
  size: number;
  mtime: number;
  /** BLAKE3 of the bytes, or null until computed (after ranged writes). */
  etag: Uint8Array | null;
  /** The metadata blob written with the object, or null. */
  meta: Uint8Array | null;
}

/** Where view bytes are read from. */
export interface ViewSource {
  log: PayloadReader;
  volume: BlockReader;
  /** Hears of damaged blocks (`store.corrupt_block`, level error). */
  logger: Logger;
}

/**
 * The view of `key` through `layers` (newest first; null entries skipped) over
 * `catalog`, or null when the object does not exist.
 *
 * @example
 * ```ts
 * import type { Catalog } from "../catalog/mod.ts";
 * import type { DirtyObject } from "./overlay.ts";
 * declare const active: Map<string, DirtyObject>;
 * declare const frozen: Map<string, DirtyObject> | null;
 * declare const catalog: Catalog;
 * const view = buildView("a", [active, frozen], catalog);
 * ```
 */
export function buildView(
  key: string,
  layers: Array<Map<string, DirtyObject> | null>,
  catalog: Catalog,
): View | null {
  const out: View["layers"] = [];
  let top: DirtyObject | undefined;
  for (const layer of layers) {
    const d = layer?.get(key);
    if (!d) continue;
    top ??= d;
    if (d.deleted && out.length === 0) return null;
    out.push({ extents: d.extents.slice(), replace: d.replace });
    if (d.replace) break;
  }
  const cut = out.length > 0 && out[out.length - 1].replace;
  const value = cut ? undefined : catalog.get(encodeKey(key));
  const record = value ? decodeRecord(value) : null;
  if (!top && !record) return null;
  return {
    key,
    layers: out,
    record,
    size: top ? top.size : record!.size,
    mtime: top ? top.mtime : record!.mtime,
    etag: top ? top.etag : isKnownEtag(record!.etag) ? record!.etag : null,
    meta: top ? top.meta : record!.meta,
  };
}

/**
 * Fills `out` with bytes `[start, end)` of the viewed object.
 *
 * @example
 * ```ts
 * import type { NvLog } from "../log/mod.ts";
 * import type { Volume } from "../volume/volume.ts";
 * import { rootLogger } from "../../logging/mod.ts";
 * declare const view: View;
 * declare const log: NvLog;
 * declare const volume: Volume;
 * const bytes = new Uint8Array(100);
 * fillView(view, 0, 100, bytes, { log, volume, logger: rootLogger() });
 * ```
 */
export function fillView(
  view: View,
  start: number,
  end: number,
  out: Uint8Array,
  src: ViewSource,
): void {
  fillLayer(view, 0, start, end, out, 0, src);
}

function fillLayer(
  view: View,
  i: number,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
  src: ViewSource,
): void {
  if (start >= end) return;
  if (i === view.layers.length) {
    try {
      fillFromRecord(view, start, end, out, at, src.volume);
    } catch (e) {
      if (!(e instanceof CorruptBlockError)) throw e;
      const named = e.of(view.key);
      src.logger.error("store.corrupt_block", {
        key: view.key,
        block: named.block,
        kind: named.kind,
      });
      throw named;
    }
    return;
  }
  const { extents, replace } = view.layers[i];
  let cursor = start;
  let lo = 0;
  let hi = extents.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (extents[mid].end <= start) lo = mid + 1;
    else hi = mid;
  }
  const below = (s: number, e: number) => {
    if (replace) out.fill(0, at + s - start, at + e - start);
    else fillLayer(view, i + 1, s, e, out, at + s - start, src);
  };
  for (let j = lo; j < extents.length && extents[j].start < end; j++) {
    const x = extents[j];
    const from = Math.max(x.start, start);
    const to = Math.min(x.end, end);
    if (from > cursor) below(cursor, from);
    src.log.readPayload(
      x.position,
      x.payloadStart + (from - x.start),
      to - from,
      out.subarray(at + from - start, at + to - start),
    );
    cursor = to;
  }
  if (cursor < end) below(cursor, end);
}

function fillFromRecord(
  view: View,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
  volume: BlockReader,
): void {
  const record = view.record;
  const limit = record ? Math.min(end, record.size) : start;
  if (limit < end) out.fill(0, at + Math.max(limit, start) - start, at + end - start);
  if (!record || start >= limit) return;
  const first = Math.floor(start / BLOCK_SIZE);
  const last = Math.floor((limit - 1) / BLOCK_SIZE);
  const ptrs = lookupRange(volume, record.map, first, last - first + 1);
  for (let k = 0; k < ptrs.length; k++) {
    const fb = first + k;
    const from = Math.max(start, fb * BLOCK_SIZE);
    const to = Math.min(limit, (fb + 1) * BLOCK_SIZE);
    const dst = out.subarray(at + from - start, at + to - start);
    if (ptrs[k].block === 0) {
      dst.fill(0);
      continue;
    }
    const block = volume.readBlock(ptrs[k].block);
    assertBlock(block, ptrs[k], "data", view.key);
    dst.set(block.subarray(from - fb * BLOCK_SIZE, to - fb * BLOCK_SIZE));
  }
}

/**
 * The next piece of a read of the view from `pos` to `end`: at most
 * `maxBytes`, ending on a block boundary (or at `end`), so consecutive pieces
 * never read the same block (each block is read and checked once per read).
 *
 * @example
 * ```ts
 * declare const view: View;
 * declare const src: ViewSource;
 * for (let pos = 0; pos < view.size;) {
 *   const piece = readChunk(view, pos, view.size, 1 << 20, src);
 *   pos += piece.length;
 * }
 * ```
 */
export function readChunk(
  view: View,
  pos: number,
  end: number,
  maxBytes: number,
  src: ViewSource,
): Uint8Array {
  const n = Math.min(end - pos, maxBytes - (pos % BLOCK_SIZE));
  const out = new Uint8Array(n);
  fillView(view, pos, pos + n, out, src);
  return out;
}

/**
 * The ETag of the viewed object's bytes (./etag.ts), read in 1 MiB pieces.
 *
 * @example
 * ```ts
 * import type { NvLog } from "../log/mod.ts";
 * import type { Volume } from "../volume/volume.ts";
 * import { rootLogger } from "../../logging/mod.ts";
 * declare const view: View;
 * declare const log: NvLog;
 * declare const volume: Volume;
 * view.etag ??= hashView(view, { log, volume, logger: rootLogger() });
 * ```
 */
export function hashView(view: View, src: ViewSource): Uint8Array {
  const hasher = new EtagHasher();
  const buf = new Uint8Array(Math.min(view.size, 1 << 20));
  for (let pos = 0; pos < view.size; pos += buf.length) {
    const n = Math.min(buf.length, view.size - pos);
    fillView(view, pos, pos + n, buf, src);
    hasher.update(buf.subarray(0, n));
  }
  return hasher.digest();
}

/**
 * The block map of one object: file block index -> volume {@link BlockPtr}.
 *
 * Small objects keep up to {@link INLINE_POINTERS} pointers inline in their
 * catalog record (no metadata block of their own, so a 4 KiB PUT costs one
 * data block); larger ones a radix tree of 4 KiB map blocks of
 * {@link FANOUT} pointers. Holes (block 0) read as zeros. Copy-on-write: an
 * update rewrites only the map blocks on the paths of changed file blocks.
 *
 * Map block layout: `u16 magic, u8 level, u8 0, u32 FNV-1a checksum of bytes
 * 8..4095`, then FANOUT pointers of 8 bytes.
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import {
  BLOCK_PTR_BYTES,
  type BlockPtr,
  type BlockReader,
  type CpWriter,
  NO_BLOCK,
  readBlockPtr,
  writeBlockPtr,
} from "../volume/types.ts";

/** Pointers kept in the catalog record itself. */
export const INLINE_POINTERS = 8;
/** Pointers per map block. */
export const FANOUT = (BLOCK_SIZE - 8) / BLOCK_PTR_BYTES;
const MAGIC = 0x4d42; // "BM"

/** A block map as stored in a catalog record. */
export type BlockMap =
  | { depth: 0; ptrs: BlockPtr[] }
  | { depth: number; root: BlockPtr };

/** The empty map. */
export const EMPTY_MAP: BlockMap = { depth: 0, ptrs: [] };

/** Tree depth needed for `nBlocks` file blocks. */
export function depthFor(nBlocks: number): number {
  if (nBlocks <= INLINE_POINTERS) return 0;
  let depth = 1;
  let span = FANOUT;
  while (span < nBlocks) {
    span *= FANOUT;
    depth++;
  }
  return depth;
}

function span(level: number): number {
  return FANOUT ** level;
}

function fnv1a(bytes: Uint8Array, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h >>> 0;
}

function decodeMapBlock(bytes: Uint8Array, block: number, level: number): DataView {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0, true) !== MAGIC || view.getUint8(2) !== level) {
    throw new Error(`map block ${block}: not a level-${level} block map node (corrupt volume?)`);
  }
  if (view.getUint32(4, true) !== fnv1a(bytes, 8)) {
    throw new Error(`map block ${block}: checksum mismatch (corrupt volume?)`);
  }
  return view;
}

function encodeMapBlock(level: number, ptrs: BlockPtr[]): Uint8Array {
  const bytes = new Uint8Array(BLOCK_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, MAGIC, true);
  view.setUint8(2, level);
  for (let i = 0; i < ptrs.length; i++) writeBlockPtr(view, 8 + i * BLOCK_PTR_BYTES, ptrs[i]);
  view.setUint32(4, fnv1a(bytes, 8), true);
  return bytes;
}

function readChildren(reader: BlockReader, ptr: BlockPtr, level: number): BlockPtr[] {
  const out: BlockPtr[] = new Array(FANOUT);
  if (ptr.block === 0) return out.fill(NO_BLOCK);
  const view = decodeMapBlock(reader.readBlock(ptr.block), ptr.block, level);
  for (let i = 0; i < FANOUT; i++) out[i] = readBlockPtr(view, 8 + i * BLOCK_PTR_BYTES);
  return out;
}

/**
 * Pointers of file blocks `first .. first+count-1` (holes as block 0).
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * declare const map: BlockMap;
 * const [ptr] = lookupRange(volume, map, 0, 1);
 * ```
 */
export function lookupRange(
  reader: BlockReader,
  map: BlockMap,
  first: number,
  count: number,
): BlockPtr[] {
  const out: BlockPtr[] = [];
  if ("ptrs" in map) {
    for (let i = first; i < first + count; i++) out.push(map.ptrs[i] ?? NO_BLOCK);
    return out;
  }
  collect(reader, map.root, map.depth, 0, first, first + count, out);
  // Blocks beyond the tree's span (an object grown past its map's depth) are holes.
  while (out.length < count) out.push(NO_BLOCK);
  return out;
}

function collect(
  reader: BlockReader,
  ptr: BlockPtr,
  level: number,
  base: number,
  from: number,
  to: number,
  out: BlockPtr[],
): void {
  const childSpan = span(level - 1);
  const lo = Math.max(0, Math.floor((from - base) / childSpan));
  const hi = Math.min(FANOUT, Math.ceil((to - base) / childSpan));
  if (ptr.block === 0) {
    for (let i = Math.max(from, base); i < Math.min(to, base + span(level)); i++) {
      out.push(NO_BLOCK);
    }
    return;
  }
  const children = readChildren(reader, ptr, level);
  for (let i = lo; i < hi; i++) {
    const childBase = base + i * childSpan;
    if (level === 1) out.push(children[i]);
    else collect(reader, children[i], level - 1, childBase, from, to, out);
  }
}

/**
 * Applies `changes` (file block -> new pointer, a hole to punch one) copy-on-write
 * and returns the map for an object of `nBlocks` blocks. Writes changed map blocks
 * through `w` and releases the ones they replace; data blocks are the caller's.
 *
 * @example
 * ```ts
 * import type { CpTransaction } from "../volume/volume.ts";
 * declare const tx: CpTransaction;
 * const next = updateMap(tx, EMPTY_MAP, new Map([[0, { block: 9, birth: tx.cp }]]), 1);
 * ```
 */
export function updateMap(
  w: CpWriter,
  map: BlockMap,
  changes: Map<number, BlockPtr>,
  nBlocks: number,
): BlockMap {
  const depth = depthFor(nBlocks);
  const oldCount = "ptrs" in map ? map.ptrs.length : span(map.depth);
  if (depth !== map.depth) {
    // The shape changes (the object grew past a level): rebuild from all pointers.
    const all = lookupRange(w, map, 0, Math.min(nBlocks, oldCount));
    while (all.length < nBlocks) all.push(NO_BLOCK);
    for (const [i, p] of changes) if (i < nBlocks) all[i] = p;
    releaseMapBlocks(w, map);
    return build(w, all, depth);
  }
  if ("ptrs" in map) {
    const ptrs = map.ptrs.slice(0, nBlocks);
    while (ptrs.length < nBlocks) ptrs.push(NO_BLOCK);
    for (const [i, p] of changes) if (i < nBlocks) ptrs[i] = p;
    return { depth: 0, ptrs };
  }
  const sorted = [...changes.entries()].filter(([i]) => i < nBlocks).sort((a, b) => a[0] - b[0]);
  if (sorted.length === 0) return map;
  return { depth, root: rewrite(w, map.root, depth, 0, sorted) };
}

function rewrite(
  w: CpWriter,
  ptr: BlockPtr,
  level: number,
  base: number,
  changes: Array<[number, BlockPtr]>,
): BlockPtr {
  const children = readChildren(w, ptr, level);
  const childSpan = span(level - 1);
  for (let i = 0; i < changes.length;) {
    const slot = Math.floor((changes[i][0] - base) / childSpan);
    let j = i + 1;
    while (j < changes.length && Math.floor((changes[j][0] - base) / childSpan) === slot) j++;
    children[slot] = level === 1
      ? changes[i][1]
      : rewrite(w, children[slot], level - 1, base + slot * childSpan, changes.slice(i, j));
    assert(level !== 1 || j === i + 1, "one change per file block");
    i = j;
  }
  if (ptr.block !== 0) w.release(ptr.block);
  return writeNode(w, level, children, ptr.block);
}

function writeNode(w: CpWriter, level: number, children: BlockPtr[], base: number): BlockPtr {
  if (children.every((c) => c.block === 0)) return NO_BLOCK;
  const block = w.allocate();
  w.write(block, encodeMapBlock(level, children), "meta", base);
  return { block, birth: w.cp };
}

function build(w: CpWriter, ptrs: BlockPtr[], depth: number): BlockMap {
  if (depth === 0) return { depth: 0, ptrs };
  let level = ptrs;
  for (let l = 1; l <= depth; l++) {
    const next: BlockPtr[] = [];
    for (let i = 0; i < level.length; i += FANOUT) {
      const children = level.slice(i, i + FANOUT);
      while (children.length < FANOUT) children.push(NO_BLOCK);
      next.push(writeNode(w, l, children, 0));
    }
    level = next;
  }
  return { depth, root: level[0] ?? NO_BLOCK };
}

/** Releases the map blocks (not the data blocks) of `map`. */
export function releaseMapBlocks(w: CpWriter, map: BlockMap): void {
  walkMap(w, map, (ptr, isMap) => {
    if (isMap) w.release(ptr.block);
  });
}

/**
 * Visits every non-hole pointer of `map`: map blocks (isMap) and data blocks.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * declare const map: BlockMap;
 * walkMap(volume, map, (ptr) => volume.markLive(ptr.block));
 * ```
 */
export function walkMap(
  reader: BlockReader,
  map: BlockMap,
  visit: (ptr: BlockPtr, isMap: boolean, fileBlock: number) => void,
): void {
  if ("ptrs" in map) {
    map.ptrs.forEach((p, i) => {
      if (p.block !== 0) visit(p, false, i);
    });
    return;
  }
  const go = (ptr: BlockPtr, level: number, base: number) => {
    if (ptr.block === 0) return;
    visit(ptr, true, base);
    const children = readChildren(reader, ptr, level);
    const childSpan = span(level - 1);
    children.forEach((c, i) => {
      if (c.block === 0) return;
      if (level === 1) visit(c, false, base + i);
      else go(c, level - 1, base + i * childSpan);
    });
  };
  go(map.root, map.depth, 0);
}

/** Encoded size of `map` in a catalog record. */
export function mapEncodedSize(map: BlockMap): number {
  return 2 + ("ptrs" in map ? map.ptrs.length : 1) * BLOCK_PTR_BYTES;
}

/** Writes `map` at `offset`; returns the offset after it. */
export function encodeMap(view: DataView, offset: number, map: BlockMap): number {
  view.setUint8(offset, map.depth);
  if ("ptrs" in map) {
    view.setUint8(offset + 1, map.ptrs.length);
    map.ptrs.forEach((p, i) => writeBlockPtr(view, offset + 2 + i * BLOCK_PTR_BYTES, p));
    return offset + 2 + map.ptrs.length * BLOCK_PTR_BYTES;
  }
  view.setUint8(offset + 1, 1);
  writeBlockPtr(view, offset + 2, map.root);
  return offset + 2 + BLOCK_PTR_BYTES;
}

/** Reads a map written by {@link encodeMap}. */
export function decodeMap(view: DataView, offset: number): BlockMap {
  const depth = view.getUint8(offset);
  const count = view.getUint8(offset + 1);
  const ptrs: BlockPtr[] = [];
  for (let i = 0; i < count; i++) ptrs.push(readBlockPtr(view, offset + 2 + i * BLOCK_PTR_BYTES));
  if (depth === 0) return { depth: 0, ptrs };
  return { depth, root: ptrs[0] };
}

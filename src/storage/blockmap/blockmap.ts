/**
 * The block map of one object: file block index -> volume {@link CheckedPtr}.
 *
 * Small objects keep up to {@link INLINE_POINTERS} pointers inline in their
 * catalog record (no metadata block of their own, so a 4 KiB PUT costs one
 * data block); larger ones a radix tree of 4 KiB map blocks of
 * {@link FANOUT} pointers. Holes (block 0) read as zeros. Copy-on-write: an
 * update rewrites only the map blocks on the paths of changed file blocks.
 *
 * Every entry carries the check of the block it points to (data and map
 * blocks alike, `../volume/check.ts`): a map block is verified against its
 * parent's entry when it is read, a data block by the reader of its bytes.
 *
 * Map block layout: `u16 magic, u8 level, u8 0, u32 0`, then FANOUT entries of
 * 16 bytes (the last 8 bytes of the block unused). Its checksum is the one in
 * its parent's entry (the record's, for the root).
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { assertBlock, checkOf } from "../volume/check.ts";
import {
  type BlockReader,
  CHECKED_PTR_BYTES,
  type CheckedPtr,
  type CpWriter,
  NO_BLOCK,
  readCheckedPtr,
  writeCheckedPtr,
} from "../volume/types.ts";

/** Pointers kept in the catalog record itself. */
export const INLINE_POINTERS = 8;
/** Pointers per map block: 255, 1020 KiB of data per leaf map block. */
export const FANOUT = Math.floor((BLOCK_SIZE - 8) / CHECKED_PTR_BYTES);
const MAGIC = 0x4d42; // "BM"

/** A block map as stored in a catalog record. */
export type BlockMap =
  | { depth: 0; ptrs: CheckedPtr[] }
  | { depth: number; root: CheckedPtr };

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

/** The map block `ptr` points to, checked against the pointer (a `corrupt` error if damaged). */
function decodeMapBlock(reader: BlockReader, ptr: CheckedPtr, level: number): DataView {
  const bytes = reader.readBlock(ptr.block);
  assertBlock(bytes, ptr, "map", null);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0, true) !== MAGIC || view.getUint8(2) !== level) {
    throw new Error(`map block ${ptr.block}: not a level-${level} block map node`);
  }
  return view;
}

function encodeMapBlock(level: number, ptrs: CheckedPtr[]): Uint8Array {
  const bytes = new Uint8Array(BLOCK_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, MAGIC, true);
  view.setUint8(2, level);
  for (let i = 0; i < ptrs.length; i++) writeCheckedPtr(view, 8 + i * CHECKED_PTR_BYTES, ptrs[i]);
  return bytes;
}

function readChildren(reader: BlockReader, ptr: CheckedPtr, level: number): CheckedPtr[] {
  const out: CheckedPtr[] = new Array(FANOUT);
  if (ptr.block === 0) return out.fill(NO_BLOCK);
  const view = decodeMapBlock(reader, ptr, level);
  for (let i = 0; i < FANOUT; i++) out[i] = readCheckedPtr(view, 8 + i * CHECKED_PTR_BYTES);
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
): CheckedPtr[] {
  const cursor = new MapCursor(reader, map);
  const out = new Array<CheckedPtr>(count);
  for (let i = 0; i < count; i++) out[i] = cursor.lookup(first + i);
  return out;
}

/**
 * Point lookups in one map that keep the map blocks on the last lookup's path.
 * A CP looks up the old pointer of each block it writes, in file order: this
 * way each map block is read and checked once per object, not once per block,
 * and a lookup decodes only the entry it returns (no array of FANOUT pointers).
 * It holds one map block per level of the tree.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * declare const map: BlockMap;
 * const cursor = new MapCursor(volume, map);
 * const [a, b] = [cursor.lookup(0), cursor.lookup(1)]; // one read of each map block
 * ```
 */
export class MapCursor {
  readonly #reader: BlockReader;
  readonly #map: BlockMap;
  /** By level: the map block last read there and its bytes (checked). */
  readonly #held: Array<{ ptr: CheckedPtr; view: DataView } | undefined> = [];

  constructor(reader: BlockReader, map: BlockMap) {
    this.#reader = reader;
    this.#map = map;
  }

  /** The pointer of file block `fileBlock` (a hole: {@link NO_BLOCK}). */
  lookup(fileBlock: number): CheckedPtr {
    const map = this.#map;
    if ("ptrs" in map) return map.ptrs[fileBlock] ?? NO_BLOCK;
    // Blocks beyond the tree's span (an object grown past its map's depth) are holes.
    if (fileBlock >= span(map.depth)) return NO_BLOCK;
    let ptr = map.root;
    for (let level = map.depth; level >= 1; level--) {
      if (ptr.block === 0) return NO_BLOCK;
      const slot = Math.floor(fileBlock / span(level - 1)) % FANOUT;
      ptr = readCheckedPtr(this.#node(ptr, level), 8 + slot * CHECKED_PTR_BYTES);
    }
    return ptr.block === 0 ? NO_BLOCK : ptr;
  }

  #node(ptr: CheckedPtr, level: number): DataView {
    const held = this.#held[level];
    if (held !== undefined && held.ptr.block === ptr.block && held.ptr.check === ptr.check) {
      return held.view;
    }
    const view = decodeMapBlock(this.#reader, ptr, level);
    this.#held[level] = { ptr, view };
    return view;
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
 * declare const check: bigint;
 * const next = updateMap(tx, EMPTY_MAP, new Map([[0, { block: 9, birth: tx.cp, check }]]), 1);
 * ```
 */
export function updateMap(
  w: CpWriter,
  map: BlockMap,
  changes: Map<number, CheckedPtr>,
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
  ptr: CheckedPtr,
  level: number,
  base: number,
  changes: Array<[number, CheckedPtr]>,
): CheckedPtr {
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

function writeNode(w: CpWriter, level: number, children: CheckedPtr[], base: number): CheckedPtr {
  if (children.every((c) => c.block === 0)) return NO_BLOCK;
  const block = w.allocate();
  const bytes = encodeMapBlock(level, children);
  const digest = blake3(bytes);
  w.write(block, bytes, "meta", base, digest);
  return { block, birth: w.cp, check: checkOf(digest) };
}

function build(w: CpWriter, ptrs: CheckedPtr[], depth: number): BlockMap {
  if (depth === 0) return { depth: 0, ptrs };
  let level = ptrs;
  for (let l = 1; l <= depth; l++) {
    const next: CheckedPtr[] = [];
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
 * Visits every non-hole pointer of `map`: map blocks (isMap) and data blocks,
 * each map block before its children, in file order. With `sinceCp`, only
 * pointers born after it: copy-on-write rewrites every map block above a
 * changed block, so a subtree born at or before `sinceCp` is skipped unread.
 * A map block that cannot be read (it fails its entry's check) throws, unless
 * `onDamaged` is given: then it hears that block (visited already) and the
 * walk skips its subtree.
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
  visit: (ptr: CheckedPtr, isMap: boolean, fileBlock: number) => void,
  opts: { sinceCp?: number; onDamaged?: (ptr: CheckedPtr, error: Error) => void } = {},
): void {
  const { sinceCp = 0, onDamaged } = opts;
  const wanted = (p: CheckedPtr) => p.block !== 0 && p.birth > sinceCp;
  if ("ptrs" in map) {
    map.ptrs.forEach((p, i) => {
      if (wanted(p)) visit(p, false, i);
    });
    return;
  }
  const go = (ptr: CheckedPtr, level: number, base: number) => {
    if (!wanted(ptr)) return;
    visit(ptr, true, base);
    let children: CheckedPtr[];
    try {
      children = readChildren(reader, ptr, level);
    } catch (e) {
      if (onDamaged === undefined || !(e instanceof Error)) throw e;
      onDamaged(ptr, e);
      return;
    }
    const childSpan = span(level - 1);
    children.forEach((c, i) => {
      if (!wanted(c)) return;
      if (level === 1) visit(c, false, base + i);
      else go(c, level - 1, base + i * childSpan);
    });
  };
  go(map.root, map.depth, 0);
}

/** Encoded size of `map` in a catalog record. */
export function mapEncodedSize(map: BlockMap): number {
  return 2 + ("ptrs" in map ? map.ptrs.length : 1) * CHECKED_PTR_BYTES;
}

/** Writes `map` at `offset`; returns the offset after it. */
export function encodeMap(view: DataView, offset: number, map: BlockMap): number {
  view.setUint8(offset, map.depth);
  if ("ptrs" in map) {
    view.setUint8(offset + 1, map.ptrs.length);
    map.ptrs.forEach((p, i) => writeCheckedPtr(view, offset + 2 + i * CHECKED_PTR_BYTES, p));
    return offset + 2 + map.ptrs.length * CHECKED_PTR_BYTES;
  }
  view.setUint8(offset + 1, 1);
  writeCheckedPtr(view, offset + 2, map.root);
  return offset + 2 + CHECKED_PTR_BYTES;
}

/** Reads a map written by {@link encodeMap}. */
export function decodeMap(view: DataView, offset: number): BlockMap {
  const depth = view.getUint8(offset);
  const count = view.getUint8(offset + 1);
  const ptrs: CheckedPtr[] = [];
  for (let i = 0; i < count; i++) {
    ptrs.push(readCheckedPtr(view, offset + 2 + i * CHECKED_PTR_BYTES));
  }
  if (depth === 0) return { depth: 0, ptrs };
  return { depth, root: ptrs[0] };
}

/**
 * On-disk layout of one catalog node: one 4096-byte metadata block.
 *
 * ```
 * offset  size  field
 *      0     4  magic "RCN1" (u32 LE 0x314e4352)
 *      4     1  layout version (1)
 *      5     1  level: 0 = leaf, n = parent of level n-1 nodes
 *      6     2  entry count n (u16 LE, >= 1)
 *      8     4  birth CP: the CP that wrote this block (must equal the pointer's)
 *     12     4  CRC-32 of the block with these 4 bytes taken as absent
 *     16   2*n  slot array: u16 offset of entry i's cell, in key order
 *      ...      free space (always zero)
 *      ...      cells, anywhere above the slot array, in no particular order
 * leaf cell:     u16 key length, u16 value length, key, value
 * internal cell: u16 key length, u32 child block, u32 child birth CP, key
 * ```
 *
 * Internal entry i points at the child holding keys k with
 * `key[i] <= k < key[i + 1]`; entry 0 stores an empty key and takes every key
 * below `key[1]` (its lower bound is the parent's separator).
 *
 * Why a slotted page: the CP sync ships a rewritten node as a byte DIFF against
 * the block it replaces, so {@link encodeNode} keeps every surviving cell at its
 * old offset and writes new cells into free space. Inserting one entry then
 * changes the header, the slots after it (2 bytes each) and the new cell;
 * repointing a child changes 8 bytes. Only when free space is too fragmented
 * does a node get repacked from scratch.
 *
 * @module
 */

import { BLOCK_SIZE, compareBytes } from "../../bytes/mod.ts";
import { BLOCK_PTR_BYTES, type BlockPtr, readBlockPtr, writeBlockPtr } from "../volume/types.ts";
import { crc32 } from "./checksum.ts";

/** "RCN1" read as a little-endian u32. */
export const NODE_MAGIC = 0x314e4352;
/** Layout version stored in every node. */
export const NODE_VERSION = 1;
/** Bytes of the node header. */
export const HEADER_BYTES = 16;
/** Bytes of one slot (cell offset). */
export const SLOT_BYTES = 2;
/** Largest key, in bytes. */
export const MAX_KEY_BYTES = 1024;
/** Largest value, in bytes: an object record with 8 inline 16-byte map entries and its metadata. */
export const MAX_VALUE_BYTES = 576;
/** Deepest level a node may claim: a guard against corrupt or looping trees. */
export const MAX_LEVEL = 32;
/** Bytes for slots and cells in one node. */
export const NODE_CAPACITY = BLOCK_SIZE - HEADER_BYTES;

const LEAF_CELL_HEAD = 4;
const INTERNAL_CELL_HEAD = 2 + BLOCK_PTR_BYTES;
const OFF_VERSION = 4;
const OFF_LEVEL = 5;
const OFF_COUNT = 6;
const OFF_BIRTH = 8;
const OFF_CHECKSUM = 12;
/** Lowest block a child may live in: blocks 0 and 1 are the superblock slots. */
const FIRST_NODE_BLOCK = 2;

// Splits must always make progress: two largest entries fit in one node.
if (2 * (SLOT_BYTES + LEAF_CELL_HEAD + MAX_KEY_BYTES + MAX_VALUE_BYTES) > NODE_CAPACITY) {
  throw new Error("catalog: two maximal leaf entries must fit in one node");
}
if (3 * (SLOT_BYTES + INTERNAL_CELL_HEAD + MAX_KEY_BYTES) > NODE_CAPACITY) {
  throw new Error("catalog: three maximal internal entries must fit in one node");
}

/**
 * The logical content of a node. Leaves fill `values`, internal nodes fill
 * `children`; the other array is empty. `cells[i]` is where entry i's cell
 * sits in the template block it came from (-1: a new entry), a hint that lets
 * {@link encodeNode} keep it in place.
 */
export interface NodeContent {
  readonly level: number;
  readonly keys: readonly Uint8Array[];
  readonly values: readonly Uint8Array[];
  readonly children: readonly BlockPtr[];
  readonly cells: readonly number[];
}

/** A decoded node; its keys and values are views into `raw`, a private copy of the block. */
export interface Node extends NodeContent {
  readonly block: number;
  readonly birth: number;
  readonly raw: Uint8Array;
}

/**
 * A catalog node that fails to decode: the block is corrupt, is not a catalog
 * node, or is not the node its pointer expects.
 *
 * @example
 * ```ts
 * import type { Catalog } from "./catalog.ts";
 * declare const catalog: Catalog;
 * try {
 *   catalog.get(new TextEncoder().encode("k"));
 * } catch (e) {
 *   if (e instanceof CatalogNodeError) console.error(`bad catalog block ${e.block}`);
 * }
 * ```
 */
export class CatalogNodeError extends Error {
  /** The block number of the bad node. */
  readonly block: number;

  /**
   * An error about the node in `block`, explained by `reason`.
   *
   * @example
   * ```ts
   * throw new CatalogNodeError(17, "checksum mismatch");
   * ```
   */
  constructor(block: number, reason: string) {
    super(`catalog node at block ${block}: ${reason}`);
    this.name = "CatalogNodeError";
    this.block = block;
  }
}

/**
 * Bytes entry i of a node takes: its slot plus its cell. (Internal nodes have
 * no values; reading past the end of `values` would send V8 down its slow,
 * generic property path, so it is never done.)
 */
export function entryBytes(
  level: number,
  keys: readonly Uint8Array[],
  values: readonly Uint8Array[],
  i: number,
): number {
  return SLOT_BYTES + cellBytes(level, keys, values, i);
}

function cellBytes(
  level: number,
  keys: readonly Uint8Array[],
  values: readonly Uint8Array[],
  i: number,
): number {
  return level === 0
    ? LEAF_CELL_HEAD + keys[i].length + values[i].length
    : INTERNAL_CELL_HEAD + keys[i].length;
}

/** Bytes of slots and cells of `content` (header excluded). */
export function payloadBytes(
  content: Pick<NodeContent, "level" | "keys" | "values">,
): number {
  let total = 0;
  for (let i = 0; i < content.keys.length; i++) {
    total += entryBytes(content.level, content.keys, content.values, i);
  }
  return total;
}

/** The CRC-32 of a node block, skipping the checksum field itself. */
export function nodeChecksum(block: Uint8Array): number {
  return crc32(crc32(0, block, 0, OFF_CHECKSUM), block, OFF_CHECKSUM + 4, BLOCK_SIZE);
}

/**
 * Encodes `content` as a node written in CP `birth`. With a `template` (the
 * node this one replaces), cells whose hint points at a template cell of the
 * same size stay at that offset, dropped template cells are zeroed, and new
 * cells go into free space, so the result differs from the template in few
 * bytes. Returns the block and the cell offset of each entry.
 */
export function encodeNode(
  content: NodeContent,
  birth: number,
  template: Node | null,
): { bytes: Uint8Array; cells: number[] } {
  const n = content.keys.length;
  const leaf = content.level === 0;
  assertContent(content, birth);
  const sizes = new Array<number>(n);
  let payload = 0;
  for (let i = 0; i < n; i++) {
    sizes[i] = cellBytes(content.level, content.keys, content.values, i);
    payload += SLOT_BYTES + sizes[i];
  }
  if (payload > NODE_CAPACITY) {
    throw new Error(`catalog: node content of ${payload} bytes exceeds ${NODE_CAPACITY}`);
  }
  const slotsEnd = HEADER_BYTES + SLOT_BYTES * n;
  const offsets = new Array<number>(n).fill(-1);
  let out: Uint8Array;
  if (template !== null && template.level === content.level) {
    out = template.raw.slice();
    const templateSizes = new Map<number, number>();
    for (let k = 0; k < template.keys.length; k++) {
      templateSizes.set(
        template.cells[k],
        cellBytes(template.level, template.keys, template.values, k),
      );
    }
    const kept = new Set<number>();
    for (let i = 0; i < n; i++) {
      const at = content.cells[i];
      if (at >= slotsEnd && templateSizes.get(at) === sizes[i] && !kept.has(at)) {
        offsets[i] = at;
        kept.add(at);
      }
    }
    // Header and slots are rewritten below; dropped cells become free space.
    out.fill(0, 0, HEADER_BYTES + SLOT_BYTES * template.keys.length);
    for (const [at, size] of templateSizes) {
      if (!kept.has(at)) out.fill(0, at, at + size);
    }
    if (!placeInFreeSpace(offsets, sizes, slotsEnd)) {
      out = new Uint8Array(BLOCK_SIZE);
      packAll(offsets, sizes);
    }
  } else {
    out = new Uint8Array(BLOCK_SIZE);
    packAll(offsets, sizes);
  }

  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, NODE_MAGIC, true);
  out[OFF_VERSION] = NODE_VERSION;
  out[OFF_LEVEL] = content.level;
  view.setUint16(OFF_COUNT, n, true);
  view.setUint32(OFF_BIRTH, birth, true);
  for (let i = 0; i < n; i++) {
    const at = offsets[i];
    const key = content.keys[i];
    view.setUint16(HEADER_BYTES + SLOT_BYTES * i, at, true);
    view.setUint16(at, key.length, true);
    if (leaf) {
      const value = content.values[i];
      view.setUint16(at + 2, value.length, true);
      out.set(key, at + LEAF_CELL_HEAD);
      out.set(value, at + LEAF_CELL_HEAD + key.length);
    } else {
      writeBlockPtr(view, at + 2, content.children[i]);
      out.set(key, at + INTERNAL_CELL_HEAD);
    }
  }
  view.setUint32(OFF_CHECKSUM, nodeChecksum(out), true);
  return { bytes: out, cells: offsets };
}

/** Checks what the encoder relies on; a failure here is a bug in the caller. */
function assertContent(content: NodeContent, birth: number): void {
  const n = content.keys.length;
  const leaf = content.level === 0;
  if (!Number.isInteger(content.level) || content.level < 0 || content.level > MAX_LEVEL) {
    throw new Error(`catalog: bad node level ${content.level}`);
  }
  if (n < 1 || content.cells.length !== n) throw new Error("catalog: bad node entry count");
  if (leaf ? content.values.length !== n : content.children.length !== n) {
    throw new Error("catalog: node keys and payloads differ in count");
  }
  for (let i = 0; i < n; i++) {
    const key = content.keys[i];
    if (!leaf && i === 0) {
      if (key.length !== 0) throw new Error("catalog: internal entry 0 must have an empty key");
      continue;
    }
    if (key.length < 1 || key.length > MAX_KEY_BYTES) throw new Error("catalog: bad key length");
    if (leaf && content.values[i].length > MAX_VALUE_BYTES) {
      throw new Error("catalog: bad value length");
    }
    if ((leaf ? i > 0 : i > 1) && compareBytes(content.keys[i - 1], key) >= 0) {
      throw new Error("catalog: node keys out of order");
    }
  }
  if (!leaf) {
    for (const child of content.children) {
      if (child.birth > birth) throw new Error("catalog: child born after its parent");
    }
  }
}

/**
 * Places each entry without an offset into the free gaps between the slot
 * array and the kept cells, each at the top of its gap. False when some cell does not
 * fit: the node is too fragmented and must be repacked.
 */
function placeInFreeSpace(offsets: number[], sizes: number[], slotsEnd: number): boolean {
  const used: Array<[number, number]> = [];
  for (let i = 0; i < offsets.length; i++) {
    if (offsets[i] >= 0) used.push([offsets[i], offsets[i] + sizes[i]]);
  }
  used.sort((a, b) => a[0] - b[0]);
  const gaps: Array<{ start: number; end: number }> = [];
  let at = slotsEnd;
  for (const [start, end] of used) {
    if (start > at) gaps.push({ start: at, end: start });
    at = Math.max(at, end);
  }
  if (at < BLOCK_SIZE) gaps.push({ start: at, end: BLOCK_SIZE });
  for (let i = 0; i < offsets.length; i++) {
    if (offsets[i] >= 0) continue;
    // Best fit keeps large gaps whole; on a tie the higher gap wins.
    let best = -1;
    for (let g = gaps.length - 1; g >= 0; g--) {
      const room = gaps[g].end - gaps[g].start;
      if (room >= sizes[i] && (best < 0 || room < gaps[best].end - gaps[best].start)) best = g;
    }
    if (best < 0) return false;
    gaps[best].end -= sizes[i];
    offsets[i] = gaps[best].end;
  }
  return true;
}

/** Packs every cell against the end of the block, entry 0 highest. */
function packAll(offsets: number[], sizes: number[]): void {
  let at = BLOCK_SIZE;
  for (let i = 0; i < offsets.length; i++) {
    at -= sizes[i];
    offsets[i] = at;
  }
}

/**
 * Decodes and verifies the node stored in `block`. Copies the bytes first: the
 * reader's array may be a shared cache buffer. Throws {@link CatalogNodeError}
 * naming `block` when anything is off.
 */
export function decodeNode(bytes: Uint8Array, block: number): Node {
  const fail = (reason: string): never => {
    throw new CatalogNodeError(block, reason);
  };
  if (bytes.length !== BLOCK_SIZE) fail(`expected ${BLOCK_SIZE} bytes, got ${bytes.length}`);
  const raw = bytes.slice();
  const view = new DataView(raw.buffer);
  const magic = view.getUint32(0, true);
  if (magic !== NODE_MAGIC) fail(`not a catalog node (magic 0x${hex(magic)})`);
  const stored = view.getUint32(OFF_CHECKSUM, true);
  const computed = nodeChecksum(raw);
  if (stored !== computed) {
    fail(`checksum mismatch (stored 0x${hex(stored)}, computed 0x${hex(computed)}): corrupt block`);
  }
  if (raw[OFF_VERSION] !== NODE_VERSION) fail(`unknown node layout version ${raw[OFF_VERSION]}`);
  const level = raw[OFF_LEVEL];
  if (level > MAX_LEVEL) fail(`level ${level} exceeds ${MAX_LEVEL}`);
  const leaf = level === 0;
  const n = view.getUint16(OFF_COUNT, true);
  const slotsEnd = HEADER_BYTES + SLOT_BYTES * n;
  if (n < 1 || slotsEnd > BLOCK_SIZE) fail(`bad entry count ${n}`);
  const birth = view.getUint32(OFF_BIRTH, true);

  const keys = new Array<Uint8Array>(n);
  const values: Uint8Array[] = [];
  const children: BlockPtr[] = [];
  const cells = new Array<number>(n);
  // Cell extents packed as start * 8192 + end, to sort as plain numbers.
  const extents = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const at = view.getUint16(HEADER_BYTES + SLOT_BYTES * i, true);
    const head = leaf ? LEAF_CELL_HEAD : INTERNAL_CELL_HEAD;
    if (at < slotsEnd || at + head > BLOCK_SIZE) fail(`entry ${i}: cell offset ${at} out of range`);
    const keyLength = view.getUint16(at, true);
    const valueLength = leaf ? view.getUint16(at + 2, true) : 0;
    const end = at + head + keyLength + valueLength;
    if (end > BLOCK_SIZE) fail(`entry ${i}: cell overruns the block`);
    const minKey = !leaf && i === 0 ? 0 : 1;
    const maxKey = !leaf && i === 0 ? 0 : MAX_KEY_BYTES;
    if (keyLength < minKey || keyLength > maxKey) fail(`entry ${i}: bad key length ${keyLength}`);
    if (valueLength > MAX_VALUE_BYTES) fail(`entry ${i}: value of ${valueLength} bytes`);
    const key = raw.subarray(at + head, at + head + keyLength);
    if ((leaf ? i > 0 : i > 1) && compareBytes(keys[i - 1], key) >= 0) {
      fail(`entry ${i}: keys out of order`);
    }
    keys[i] = key;
    cells[i] = at;
    extents[i] = at * 8192 + end;
    if (leaf) {
      values.push(raw.subarray(at + head + keyLength, end));
    } else {
      const child = readBlockPtr(view, at + 2);
      if (child.block < FIRST_NODE_BLOCK) fail(`entry ${i}: child block ${child.block}`);
      if (child.birth < 1 || child.birth > birth) {
        fail(`entry ${i}: child birth CP ${child.birth} not in 1..${birth}`);
      }
      children.push(child);
    }
  }
  // Overlapping cells would let a rewrite zero a live neighbour.
  extents.sort();
  for (let i = 1; i < n; i++) {
    if (Math.floor(extents[i] / 8192) < extents[i - 1] % 8192) fail("cells overlap");
  }
  return { block, birth, level, keys, values, children, cells, raw };
}

function hex(n: number): string {
  return n.toString(16).padStart(8, "0");
}

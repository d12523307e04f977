/**
 * Test helpers: an independent structural check of a catalog tree (read with
 * the node decoder, not the Catalog class), random keys and values, and a
 * byte-ordered model.
 *
 * @module
 */

import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import {
  decodeNode,
  HEADER_BYTES,
  MAX_LEVEL,
  type Node,
  SLOT_BYTES,
} from "../../../src/storage/catalog/node.ts";
import { type BlockPtr, type BlockReader } from "../../../src/storage/volume/types.ts";

/** The shape of a tree: its nodes per level, left to right, and each node's parent. */
export interface TreeShape {
  /** levels[l]: pointers of the level-l nodes in key order. */
  levels: BlockPtr[][];
  /** block -> parent block (absent for the root). */
  parent: Map<number, number>;
  entries: number;
  height: number;
}

/**
 * A cheap assertion for hot loops: node:assert's `ok` is variadic and slow,
 * and a template message would be built on every call.
 */
export function expect(condition: unknown, message: string | (() => string)): void {
  if (!condition) assert.fail(typeof message === "function" ? message() : message);
}

/** Latin-1 string of `bytes`: JS compares such strings in unsigned byte order. */
export function latin1(bytes: Uint8Array): string {
  // apply() takes the typed array as is; spreading it would iterate slowly.
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Unsigned byte order, written out plainly (independent of the code under test). */
export function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** True when both are undefined or hold the same bytes. */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && compare(a, b) === 0;
}

/** Bytes of a {@link latin1} string. */
export function unlatin1(s: string): Uint8Array {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * Nodes already checked, per reader, by "block:birth". A block is immutable
 * while live and gets a new birth CP when reused, so a checked node stays
 * checked; this keeps checking a big tree after every CP cheap.
 */
const checked = new WeakMap<BlockReader, Map<string, Node>>();

const lastChecked = new WeakMap<BlockReader, Array<{ id: string; shape: TreeShape }>>();

function checkedNode(reader: BlockReader, ptr: BlockPtr): Node {
  let nodes = checked.get(reader);
  if (nodes === undefined) checked.set(reader, nodes = new Map());
  const id = `${ptr.block}:${ptr.birth}`;
  let node = nodes.get(id);
  if (node === undefined) {
    node = decodeNode(reader.readBlock(ptr.block), ptr.block);
    expect(node.birth === ptr.birth, () => `node ${ptr.block}: birth differs from its pointer`);
    assertFreeSpaceZero(node);
    nodes.set(id, node);
  }
  return node;
}

/**
 * Checks every structural invariant of the tree at `root` and returns its
 * shape: uniform leaf depth, levels falling by one, keys inside the bounds the
 * separators give, node birth = pointer birth >= child birth, free space all
 * zero, no block twice.
 */
export function checkTree(reader: BlockReader, root: BlockPtr | null): TreeShape {
  const shape: TreeShape = { levels: [], parent: new Map(), entries: 0, height: 0 };
  if (root === null) return shape;
  // The last two trees checked on this reader (the current one and the one
  // before, still intact until its blocks are reused) do not change.
  const id = `${root.block}:${root.birth}`;
  const last = lastChecked.get(reader) ?? [];
  const hit = last.find((entry) => entry.id === id);
  if (hit !== undefined) return hit.shape;
  const seen = new Set<number>();
  const rootNode = checkedNode(reader, root);
  shape.height = rootNode.level + 1;
  for (let l = 0; l <= rootNode.level; l++) shape.levels.push([]);
  // Depth-first, left to right, so each level's list comes out in key order.
  const visit = (ptr: BlockPtr, level: number, lo: Uint8Array | null, hi: Uint8Array | null) => {
    expect(!seen.has(ptr.block), () => `block ${ptr.block} twice in the tree`);
    seen.add(ptr.block);
    const node = checkedNode(reader, ptr);
    expect(node.level === level, () => `node ${ptr.block}: wrong level`);
    shape.levels[level].push(ptr);
    const n = node.keys.length;
    if (level === 0) {
      for (const key of node.keys) {
        expect(
          lo === null || compare(key, lo) >= 0,
          () => `leaf ${ptr.block}: key below its bound`,
        );
        expect(hi === null || compare(key, hi) < 0, () => `leaf ${ptr.block}: key above its bound`);
        shape.entries++;
      }
      return;
    }
    for (let i = 0; i < n; i++) {
      const child = node.children[i];
      expect(child.birth <= node.birth, () => `node ${ptr.block}: child born later`);
      const childLo = i === 0 ? lo : node.keys[i];
      if (i > 0) {
        expect(lo === null || compare(node.keys[i], lo) > 0, () => `node ${ptr.block}: separator`);
        expect(hi === null || compare(node.keys[i], hi) < 0, () => `node ${ptr.block}: separator`);
      }
      const childHi = i + 1 < n ? node.keys[i + 1] : hi;
      shape.parent.set(child.block, ptr.block);
      visit(child, level - 1, childLo, childHi);
    }
  };
  visit(root, rootNode.level, null, null);
  lastChecked.set(reader, [{ id, shape }, ...last.slice(0, 1)]);
  return shape;
}

/** Every byte outside the header, the slots and the cells is zero. */
export function assertFreeSpaceZero(node: Node): void {
  const used = new Uint8Array(BLOCK_SIZE);
  used.fill(1, 0, HEADER_BYTES + SLOT_BYTES * node.keys.length);
  for (let i = 0; i < node.keys.length; i++) {
    const head = node.level === 0 ? 4 : 10;
    const size = head + node.keys[i].length + (node.level === 0 ? node.values[i].length : 0);
    used.fill(1, node.cells[i], node.cells[i] + size);
  }
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (!used[i] && node.raw[i] !== 0) assert.fail(`node ${node.block}: free byte ${i} not zero`);
  }
}

/**
 * Blocks on the root-to-leaf paths that `keys` route to, routing as a B+tree
 * must: the child of the last separator <= key, entry 0 for smaller keys.
 */
export function touchedBlocks(
  reader: BlockReader,
  root: BlockPtr | null,
  keys: Uint8Array[],
): Set<number> {
  const touched = new Set<number>();
  if (root === null) return touched;
  const nodes = new Map<number, Node>();
  const load = (ptr: BlockPtr) => {
    let node = nodes.get(ptr.block);
    if (node === undefined) {
      node = decodeNode(reader.readBlock(ptr.block), ptr.block);
      nodes.set(ptr.block, node);
    }
    return node;
  };
  for (const key of keys) {
    let ptr = root;
    for (let depth = 0; depth <= MAX_LEVEL; depth++) {
      touched.add(ptr.block);
      const node = load(ptr);
      if (node.level === 0) break;
      let index = 0;
      for (let i = 1; i < node.keys.length; i++) {
        if (compare(node.keys[i], key) <= 0) index = i;
      }
      ptr = node.children[index];
    }
  }
  return touched;
}

const PREFIXES = [
  "",
  "a/",
  "a/b/",
  "a/b/c/",
  "photos/2024/",
  "photos/2025/",
  "é/",
  "日本語/",
  "😀/",
  "\u{10FFFF}",
  "\uFFFF/",
  "z",
];
const ALPHABETS = ["abcxyz019/-_.", "aé/üßñ", "日本語中文/a", "😀🚀𝄞x", "\u0080\u07FF\u0800\uFFFD"];
const encoder = new TextEncoder();

/** A random key: shared prefixes, multi-byte UTF-8, lengths 1..1024 bytes, a few raw byte keys. */
export function randomKey(rng: () => number): Uint8Array {
  if (rng() < 0.05) {
    const bytes = new Uint8Array(1 + Math.floor(rng() * 40));
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = rng() < 0.2 ? (rng() < 0.5 ? 0 : 255) : rng() * 256;
    }
    return bytes;
  }
  const prefix = PREFIXES[Math.floor(rng() * PREFIXES.length)];
  const alphabet = [...ALPHABETS[Math.floor(rng() * ALPHABETS.length)]];
  const r = rng();
  const chars = 1 + Math.floor(rng() * (r < 0.75 ? 12 : r < 0.97 ? 100 : 1100));
  let s = prefix;
  for (let i = 0; i < chars; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
  let bytes = encoder.encode(s);
  if (bytes.length > 1024) {
    // Cut at a character boundary: never inside a UTF-8 sequence.
    let end = 1024;
    while ((bytes[end] & 0xc0) === 0x80) end--;
    bytes = bytes.slice(0, end);
  }
  return bytes;
}

/** A random value of 0..`max` bytes. */
export function randomValue(rng: () => number, max = 512): Uint8Array {
  const value = new Uint8Array(rng() < 0.1 ? 0 : Math.floor(rng() * (max + 1)));
  for (let i = 0; i < value.length; i++) value[i] = rng() * 256;
  return value;
}

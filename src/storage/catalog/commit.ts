/**
 * One copy-on-write pass of a sorted batch of changes over the catalog tree.
 *
 * The pass works in two phases so that every node is written exactly once:
 *
 * 1. `apply` descends only into children that receive changes and returns, for
 *    each changed node, its replacement as unwritten {@link Pending} pieces
 *    (none when it became empty, several when it overflowed). A parent then
 *    merges underfull rewritten children with a neighbour, and becomes a
 *    pending node itself, pointing at its children's pending pieces.
 * 2. `#write` writes the pending tree bottom-up, each piece to a newly
 *    allocated block, with the node it replaces as the DIFF base.
 *
 * Every replaced node is released exactly once, when its replacement is
 * decided. Unchanged subtrees keep their pointers (and old birth CPs).
 *
 * @module
 */

import { BLOCK_SIZE, compareBytes, equalBytes } from "../../bytes/mod.ts";
import { type BlockPtr, type CpWriter } from "../volume/types.ts";
import {
  encodeNode,
  entryBytes,
  HEADER_BYTES,
  MAX_LEVEL,
  type Node,
  NODE_CAPACITY,
  payloadBytes,
} from "./node.ts";
import { planSplit } from "./split.ts";

/**
 * One change of a commit batch: store `value` under `key`, or delete `key`
 * when `value` is null.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * const changes: CatalogChange[] = [
 *   { key: enc.encode("a"), value: enc.encode("1") },
 *   { key: enc.encode("b"), value: null },
 * ];
 * ```
 */
export interface CatalogChange {
  /** 1..1024 bytes. */
  key: Uint8Array;
  /** 0..576 bytes to store, or null to delete the key. */
  value: Uint8Array | null;
}

/** Loads the node `ptr` points at; `level` is the level it must have (null: any). */
export type LoadNode = (ptr: BlockPtr, level: number | null) => Node;

/**
 * A rewritten child below this many bytes (a quarter block) is underfull: it
 * is merged into an adjacent sibling when the two fit in {@link MERGE_LIMIT}.
 */
export const UNDERFULL_BYTES = BLOCK_SIZE / 4;
/** Merged nodes stay below three quarters of a block, so the next insert does not split them. */
export const MERGE_LIMIT = (BLOCK_SIZE * 3) / 4;

const EMPTY = new Uint8Array(0);

/** A node of the new tree, decided but not yet written. */
class Pending {
  constructor(
    readonly level: number,
    readonly keys: Uint8Array[],
    readonly values: Uint8Array[],
    readonly children: Array<BlockPtr | Pending>,
    /** Cell offsets of the entries in `template` (-1: not from it). */
    readonly cells: number[],
    /** The node this one replaces: the DIFF base, and the source of cell offsets. */
    readonly template: Node | null,
    /** The parent's separator for this node when it is a split piece other than the first. */
    readonly low: Uint8Array,
  ) {}
}

/** An entry of an internal node under construction. */
interface Slot {
  key: Uint8Array;
  cell: number;
  child: BlockPtr | Pending;
}

/** Applies one batch through one {@link CpWriter}; use once. */
export class CommitPass {
  readonly #w: CpWriter;
  readonly #load: LoadNode;
  readonly #written: (ptr: BlockPtr, bytes: Uint8Array) => void;

  /** `written` is told of every node block this pass writes (to warm a cache). */
  constructor(w: CpWriter, load: LoadNode, written: (ptr: BlockPtr, bytes: Uint8Array) => void) {
    this.#w = w;
    this.#load = load;
    this.#written = written;
  }

  /**
   * Applies `changes` (sorted, unique, validated by the caller) to the tree at
   * `root` and returns the new root: `root` itself when nothing changed, null
   * when the tree became empty.
   */
  run(root: BlockPtr | null, changes: readonly CatalogChange[]): BlockPtr | null {
    if (changes.length === 0) return root;
    let pieces: Pending[] | null;
    if (root === null) {
      const keys: Uint8Array[] = [];
      const values: Uint8Array[] = [];
      for (const change of changes) {
        if (change.value === null) continue;
        keys.push(change.key);
        values.push(change.value);
      }
      pieces = keys.length === 0 ? [] : this.#split(0, keys, values, [], keys.map(() => -1), null);
    } else {
      pieces = this.#apply(this.#load(root, null), changes, 0, changes.length);
      if (pieces === null) return root;
    }
    return this.#finish(pieces);
  }

  /** The replacement of `node` under `changes[lo, hi)`; null when it is unchanged. */
  #apply(node: Node, changes: readonly CatalogChange[], lo: number, hi: number): Pending[] | null {
    return node.level === 0
      ? this.#applyLeaf(node, changes, lo, hi)
      : this.#applyInternal(node, changes, lo, hi);
  }

  #applyLeaf(node: Node, changes: readonly CatalogChange[], lo: number, hi: number) {
    const keys: Uint8Array[] = [];
    const values: Uint8Array[] = [];
    const cells: number[] = [];
    let changed = false;
    let i = 0;
    let j = lo;
    const n = node.keys.length;
    // A sorted merge of the old entries with the changes.
    while (i < n || j < hi) {
      const order = i === n ? 1 : j === hi ? -1 : compareBytes(node.keys[i], changes[j].key);
      if (order < 0) {
        keys.push(node.keys[i]);
        values.push(node.values[i]);
        cells.push(node.cells[i]);
        i++;
        continue;
      }
      const value = changes[j].value;
      if (order > 0) {
        if (value !== null) {
          keys.push(changes[j].key);
          values.push(value);
          cells.push(-1);
          changed = true;
        }
        j++;
        continue;
      }
      if (value === null) {
        changed = true;
      } else {
        // Same key: keep the cell hint; the encoder reuses it if the size matches.
        if (!equalBytes(value, node.values[i])) changed = true;
        keys.push(node.keys[i]);
        values.push(value);
        cells.push(node.cells[i]);
      }
      i++;
      j++;
    }
    if (!changed) return null;
    this.#w.release(node.block);
    return keys.length === 0 ? [] : this.#split(0, keys, values, [], cells, node);
  }

  #applyInternal(node: Node, changes: readonly CatalogChange[], lo: number, hi: number) {
    const slots: Slot[] = [];
    const n = node.keys.length;
    let changed = false;
    let j = lo;
    for (let c = 0; c < n; c++) {
      const end = c + 1 < n ? lowerBound(changes, j, hi, node.keys[c + 1]) : hi;
      const own = { key: node.keys[c], cell: node.cells[c] };
      const result = end === j
        ? null
        : this.#apply(this.#load(node.children[c], node.level - 1), changes, j, end);
      j = end;
      if (result === null) {
        slots.push({ ...own, child: node.children[c] });
        continue;
      }
      changed = true;
      // The first piece inherits the old separator (still a lower bound of its
      // keys, and its cell stays put); later pieces bring their own.
      result.forEach((piece, k) => {
        slots.push(k === 0 ? { ...own, child: piece } : { key: piece.low, cell: -1, child: piece });
      });
    }
    if (j !== hi) throw new Error("catalog: changes escaped their subtree (internal error)");
    if (!changed) return null;
    this.#w.release(node.block);
    this.#mergeUnderfull(slots, node.level - 1);
    if (slots.length === 0) return [];
    const keys = slots.map((slot, k) => k === 0 ? EMPTY : slot.key);
    return this.#split(
      node.level,
      keys,
      [],
      slots.map((slot) => slot.child),
      slots.map((slot) => slot.cell),
      node,
    );
  }

  /**
   * Merges each underfull rewritten child into its left or right neighbour
   * when the two fit in {@link MERGE_LIMIT}. Only rewritten children start a
   * merge, so an untouched sibling is rewritten only to absorb one.
   */
  #mergeUnderfull(slots: Slot[], level: number): void {
    let i = 0;
    while (i < slots.length) {
      const child = slots[i].child;
      if (!(child instanceof Pending) || HEADER_BYTES + payloadBytes(child) >= UNDERFULL_BYTES) {
        i++;
      } else if (i > 0 && this.#tryMerge(slots, i - 1, level)) {
        i--; // the merged node may still be underfull
      } else if (i + 1 < slots.length && this.#tryMerge(slots, i, level)) {
        // slots[i] is the merged node now; look at it again.
      } else {
        i++;
      }
    }
  }

  /** Merges slots[at + 1] into slots[at] when they fit together. */
  #tryMerge(slots: Slot[], at: number, level: number): boolean {
    const left = this.#pending(slots[at].child, level);
    const right = this.#pending(slots[at + 1].child, level);
    const separator = slots[at + 1].key;
    // An internal right node's entry 0 gains the separator as its key.
    const extra = level === 0 ? 0 : separator.length;
    if (HEADER_BYTES + payloadBytes(left) + payloadBytes(right) + extra > MERGE_LIMIT) return false;
    for (const slot of [slots[at], slots[at + 1]]) {
      if (!(slot.child instanceof Pending)) this.#w.release(slot.child.block);
    }
    // Keep the cells of the bigger side in place; the other side's move.
    const useLeft = left.template !== null &&
      (right.template === null || payloadBytes(left) >= payloadBytes(right));
    const template = useLeft ? left.template : right.template;
    const keys = level === 0
      ? [...left.keys, ...right.keys]
      : [...left.keys, separator, ...right.keys.slice(1)];
    const cells = [
      ...left.cells.map((cell) => useLeft ? cell : -1),
      ...right.cells.map((cell) => useLeft ? -1 : cell),
    ];
    const merged = new Pending(
      level,
      keys,
      [...left.values, ...right.values],
      [...left.children, ...right.children],
      cells,
      template,
      left.low,
    );
    slots[at] = { key: slots[at].key, cell: slots[at].cell, child: merged };
    slots.splice(at + 1, 1);
    return true;
  }

  /** A pending view of a child: itself, or a copy of an unchanged node (not yet released). */
  #pending(child: BlockPtr | Pending, level: number): Pending {
    if (child instanceof Pending) return child;
    const node = this.#load(child, level);
    return new Pending(
      level,
      [...node.keys],
      [...node.values],
      [...node.children],
      [...node.cells],
      node,
      level === 0 ? node.keys[0] : EMPTY,
    );
  }

  /** Cuts a node's new content into pieces that each fit in one block. */
  #split(
    level: number,
    keys: Uint8Array[],
    values: Uint8Array[],
    children: Array<BlockPtr | Pending>,
    cells: number[],
    template: Node | null,
  ): Pending[] {
    const sizes = keys.map((_, i) => entryBytes(level, keys, values, i));
    const pieces: Pending[] = [];
    const ends = planSplit(sizes, NODE_CAPACITY);
    // Split pieces are packed afresh: keeping old cell offsets would leave each
    // piece riddled with the holes of the entries that moved out, and later
    // inserts would then have to repack it anyway. The first piece keeps the
    // old node as its DIFF base.
    const split = ends.length > 1;
    let start = 0;
    for (const end of ends) {
      const pieceKeys = keys.slice(start, end);
      // A leaf piece's separator need only split it from the piece before;
      // an internal piece's first key moves up into the parent.
      const low = level === 0 && start > 0
        ? shortestSeparator(keys[start - 1], keys[start])
        : pieceKeys[0];
      if (level > 0) pieceKeys[0] = EMPTY;
      pieces.push(
        new Pending(
          level,
          pieceKeys,
          values.slice(start, end),
          children.slice(start, end),
          split ? pieceKeys.map(() => -1) : cells.slice(start, end),
          start === 0 ? template : null,
          low,
        ),
      );
      start = end;
    }
    return pieces;
  }

  /** Grows the tree over several root pieces, or collapses single-child roots. */
  #finish(pieces: Pending[]): BlockPtr | null {
    let level = pieces;
    for (let round = 0; round <= MAX_LEVEL; round++) {
      if (level.length === 0) return null;
      if (level.length === 1) return this.#collapse(level[0]);
      const parentLevel = level[0].level + 1;
      if (parentLevel > MAX_LEVEL) break;
      const keys = level.map((piece, k) => k === 0 ? EMPTY : piece.low);
      level = this.#split(parentLevel, keys, [], level, level.map(() => -1), null);
    }
    throw new Error(`catalog: tree would exceed ${MAX_LEVEL} levels`);
  }

  /** Descends while the root is an internal node with one child, then writes the root. */
  #collapse(root: Pending): BlockPtr {
    let top: BlockPtr | Pending = root;
    let level = root.level;
    for (let depth = 0; depth <= MAX_LEVEL; depth++) {
      if (top instanceof Pending) {
        // A dropped pending node was never written; what it replaced is released.
        if (top.level > 0 && top.children.length === 1) {
          top = top.children[0];
          level--;
          continue;
        }
        return this.#write(top);
      }
      const node = this.#load(top, level);
      if (node.level === 0 || node.children.length > 1) return top;
      this.#w.release(top.block);
      top = node.children[0];
      level--;
    }
    throw new Error("catalog: root collapse did not end (internal error)");
  }

  /** Writes `pending` and its pending descendants; returns its pointer. */
  #write(pending: Pending): BlockPtr {
    const children = pending.children.map((child) =>
      child instanceof Pending ? this.#write(child) : child
    );
    const w = this.#w;
    const { bytes } = encodeNode(
      {
        level: pending.level,
        keys: pending.keys,
        values: pending.values,
        children,
        cells: pending.cells,
      },
      w.cp,
      pending.template,
    );
    const block = w.allocate();
    if (!Number.isInteger(block) || block < 2) {
      throw new Error(`catalog: the CP writer allocated block ${block}`);
    }
    w.write(block, bytes, "meta", pending.template?.block ?? 0);
    const ptr = { block, birth: w.cp };
    this.#written(ptr, bytes);
    return ptr;
  }
}

/**
 * The shortest prefix of `right` that sorts after `left` (given left < right):
 * a separator between two leaves. Long keys with shared prefixes (paths) make
 * short separators, so internal nodes fan out wider and the tree stays low.
 */
export function shortestSeparator(left: Uint8Array, right: Uint8Array): Uint8Array {
  let common = 0;
  while (common < left.length && left[common] === right[common]) common++;
  const separator = right.subarray(0, common + 1);
  if (compareBytes(left, separator) >= 0 || compareBytes(separator, right) > 0) {
    throw new Error("catalog: separator out of order (internal error)");
  }
  return separator;
}

/** First index in [from, to) whose key is >= `key` (changes are sorted). */
function lowerBound(
  changes: readonly CatalogChange[],
  from: number,
  to: number,
  key: Uint8Array,
): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(changes[mid].key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

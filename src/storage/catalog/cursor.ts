/**
 * An in-order cursor over the leaves of a catalog tree. Copy-on-write nodes
 * have no sibling links (a sibling's address changes whenever it is
 * rewritten), so the cursor keeps the root-to-leaf path and climbs it.
 *
 * @module
 */

import { compareBytes } from "../../bytes/mod.ts";
import type { BlockPtr } from "../volume/types.ts";
import type { LoadNode } from "./commit.ts";
import type { Node } from "./node.ts";

interface Frame {
  node: Node;
  index: number;
}

/**
 * Index of the child of internal `node` whose range holds `key`: the last
 * entry whose separator is <= key (entry 0 takes everything below key[1]).
 */
export function childIndex(node: Node, key: Uint8Array): number {
  let lo = 1;
  let hi = node.keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(node.keys[mid], key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/**
 * First index of leaf `node` with key >= `key` (or > `key` when `exclusive`);
 * the entry count when there is none.
 */
export function leafIndex(node: Node, key: Uint8Array, exclusive: boolean): number {
  let lo = 0;
  let hi = node.keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const order = compareBytes(node.keys[mid], key);
    if (order < 0 || (exclusive && order === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Walks entries in key order from a seek position. */
export class Cursor {
  readonly #load: LoadNode;
  readonly #stack: Frame[] = [];

  /** Positions at the first entry >= `from` (> `from` when `exclusive`; the first entry when `from` is null). */
  constructor(load: LoadNode, root: BlockPtr, from: Uint8Array | null, exclusive: boolean) {
    this.#load = load;
    let node = load(root, null);
    while (node.level > 0) {
      const index = from === null ? 0 : childIndex(node, from);
      this.#stack.push({ node, index });
      node = load(node.children[index], node.level - 1);
    }
    this.#stack.push({ node, index: from === null ? 0 : leafIndex(node, from, exclusive) });
    this.#settle();
  }

  /** The current entry (views into a cached node: copy before handing out), or null at the end. */
  get current(): { key: Uint8Array; value: Uint8Array } | null {
    const top = this.#stack.at(-1);
    if (top === undefined) return null;
    return { key: top.node.keys[top.index], value: top.node.values[top.index] };
  }

  /** Moves to the next entry. */
  next(): void {
    const top = this.#stack.at(-1);
    if (top === undefined) return;
    top.index++;
    this.#settle();
  }

  /** Climbs past exhausted nodes and descends to the next leaf entry, if any. */
  #settle(): void {
    while (this.#stack.length > 0) {
      const top = this.#stack[this.#stack.length - 1];
      if (top.index >= top.node.keys.length) {
        this.#stack.pop();
        const parent = this.#stack.at(-1);
        if (parent !== undefined) parent.index++;
        continue;
      }
      if (top.node.level === 0) return;
      const child = this.#load(top.node.children[top.index], top.node.level - 1);
      this.#stack.push({ node: child, index: 0 });
    }
  }
}

/**
 * A bounded least-recently-used cache of decoded catalog nodes, keyed by block
 * number and checked against the pointer's birth CP: a block freed and reused
 * by a later CP is a different node.
 *
 * @module
 */

import type { BlockPtr } from "../volume/types.ts";
import type { Node } from "./node.ts";

/** LRU of decoded nodes; a capacity of 0 caches nothing. */
export class NodeCache {
  readonly #nodes = new Map<number, Node>();
  readonly #capacity: number;

  /** Holds at most `capacity` nodes. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`catalog: cacheNodes must be a non-negative integer, got ${capacity}`);
    }
    this.#capacity = capacity;
  }

  /** Number of cached nodes. */
  get size(): number {
    return this.#nodes.size;
  }

  /** The cached node for `ptr`, if it is the same block version. */
  get(ptr: BlockPtr): Node | undefined {
    const node = this.#nodes.get(ptr.block);
    if (node === undefined) return undefined;
    this.#nodes.delete(ptr.block);
    if (node.birth !== ptr.birth) return undefined;
    this.#nodes.set(ptr.block, node); // most recently used goes last
    return node;
  }

  /** Caches `node`, evicting the least recently used beyond capacity. */
  set(node: Node): void {
    if (this.#capacity === 0) return;
    this.#nodes.delete(node.block);
    this.#nodes.set(node.block, node);
    for (const block of this.#nodes.keys()) {
      if (this.#nodes.size <= this.#capacity) break;
      this.#nodes.delete(block);
    }
  }
}

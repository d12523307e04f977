/**
 * The catalog: an ordered map from byte keys to byte values, kept as a
 * copy-on-write B+tree of 4 KiB metadata blocks (layout in `node.ts`, the
 * commit pass in `commit.ts`).
 *
 * @module
 */

import { compareBytes, equalBytes, hasPrefix } from "../../bytes/mod.ts";
import type { BlockPtr, BlockReader, CpWriter } from "../volume/types.ts";
import { NodeCache } from "./cache.ts";
import { type CatalogChange, CommitPass } from "./commit.ts";
import { childIndex, Cursor, leafIndex } from "./cursor.ts";
import { CatalogNodeError, decodeNode, MAX_KEY_BYTES, MAX_VALUE_BYTES, type Node } from "./node.ts";

/**
 * Options of a {@link Catalog}.
 *
 * @example
 * ```ts
 * const options: CatalogOptions = { cacheNodes: 4096 };
 * ```
 */
export interface CatalogOptions {
  /** Decoded nodes kept in memory (least recently used go first); default 1024. */
  cacheNodes?: number;
}

/**
 * What {@link Catalog.list} selects.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * const page: ListOptions = { prefix: enc.encode("photos/"), startAfter: enc.encode("photos/b"), limit: 100 };
 * ```
 */
export interface ListOptions {
  /** Only keys starting with these bytes. */
  prefix?: Uint8Array;
  /** Only keys sorting strictly after this one (the last key of the previous page). */
  startAfter?: Uint8Array;
  /** At most this many entries (a non-negative integer). */
  limit: number;
}

/**
 * One page of {@link Catalog.list}.
 *
 * @example
 * ```ts
 * declare const catalog: Catalog;
 * const { entries, more }: ListResult = catalog.list({ limit: 10 });
 * ```
 */
export interface ListResult {
  /** Entries in key order; fresh copies the caller may keep or modify. */
  entries: Array<{ key: Uint8Array; value: Uint8Array }>;
  /** True when at least one more selected entry follows the last one returned. */
  more: boolean;
}

/** Default of {@link CatalogOptions.cacheNodes}. */
const DEFAULT_CACHE_NODES = 1024;

/**
 * An ordered map from byte keys (1..1024 bytes, memcmp order) to byte values
 * (0..576 bytes), stored as a copy-on-write B+tree. Reads see the tree at
 * {@link Catalog.root}; {@link Catalog.commit} writes a batch as new blocks and
 * moves the root. To read another version (an older snapshot, or the tree a
 * destination just applied), construct another Catalog on its root.
 *
 * Merging: a node rewritten by a commit that falls below a quarter block is
 * merged into an adjacent sibling when both fit in three quarters of a block.
 * Nothing is redistributed between siblings otherwise.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * const enc = new TextEncoder();
 * const catalog = new Catalog(volume, volume.superblock.catalogRoot);
 * const root = catalog.commit([{ key: enc.encode("a"), value: enc.encode("1") }], volume.beginCp());
 * catalog.get(enc.encode("a")); // Uint8Array [49]
 * ```
 */
export class Catalog {
  readonly #reader: BlockReader;
  readonly #cache: NodeCache;
  #root: BlockPtr | null;

  /**
   * Opens the tree at `root` (the committed root pointer, or null for an empty
   * catalog), reading blocks through `reader`. Keeps a bounded cache of
   * decoded nodes (`options.cacheNodes`, default 1024).
   *
   * @example
   * ```ts
   * import type { Volume } from "../volume/volume.ts";
   * declare const volume: Volume;
   * const catalog = new Catalog(volume, { block: 42, birth: 7 }, { cacheNodes: 256 });
   * ```
   */
  constructor(reader: BlockReader, root: BlockPtr | null, options: CatalogOptions = {}) {
    if (root !== null && !(isU32(root.block) && root.block >= 2 && isU32(root.birth))) {
      throw new RangeError(`catalog: bad root pointer ${JSON.stringify(root)}`);
    }
    this.#reader = reader;
    this.#root = root === null ? null : { block: root.block, birth: root.birth };
    this.#cache = new NodeCache(options.cacheNodes ?? DEFAULT_CACHE_NODES);
  }

  /**
   * The root pointer of the tree this catalog reads (null: empty).
   *
   * @example
   * ```ts
   * import type { Superblock } from "../volume/superblock.ts";
   * declare const catalog: Catalog;
   * declare const superblock: Superblock;
   * superblock.catalogRoot = catalog.root;
   * ```
   */
  get root(): BlockPtr | null {
    return this.#root === null ? null : { ...this.#root };
  }

  /**
   * The value stored under `key` (a fresh copy), or undefined.
   *
   * @example
   * ```ts
   * declare const catalog: Catalog;
   * const value = catalog.get(new TextEncoder().encode("photos/cat.jpg"));
   * ```
   */
  get(key: Uint8Array): Uint8Array | undefined {
    if (this.#root === null) return undefined;
    let node = this.#load(this.#root, null, this.#reader);
    while (node.level > 0) {
      node = this.#load(node.children[childIndex(node, key)], node.level - 1, this.#reader);
    }
    const index = leafIndex(node, key, false);
    if (index < node.keys.length && equalBytes(node.keys[index], key)) {
      return node.values[index].slice();
    }
    return undefined;
  }

  /**
   * Entries in key order with key > `startAfter` (if given) and key starting
   * with `prefix` (if given); at most `limit`. `more` tells whether another
   * selected entry follows: pass the last key returned as the next
   * `startAfter` to continue.
   *
   * @example
   * ```ts
   * declare const catalog: Catalog;
   * const enc = new TextEncoder();
   * let startAfter: Uint8Array | undefined;
   * for (;;) {
   *   const page = catalog.list({ prefix: enc.encode("logs/"), startAfter, limit: 100 });
   *   for (const { key } of page.entries) console.log(new TextDecoder().decode(key));
   *   if (!page.more) break;
   *   startAfter = page.entries.at(-1)!.key;
   * }
   * ```
   */
  list(options: ListOptions): ListResult {
    const { prefix, startAfter, limit } = options;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new RangeError(`catalog: list limit must be a non-negative integer, got ${limit}`);
    }
    const entries: ListResult["entries"] = [];
    if (this.#root === null) return { entries, more: false };
    // Start at whichever bound is tighter: after startAfter, or at the prefix.
    const afterStart = startAfter !== undefined &&
      (prefix === undefined || compareBytes(startAfter, prefix) >= 0);
    const from = afterStart ? startAfter : prefix ?? null;
    const cursor = new Cursor(
      (ptr, level) => this.#load(ptr, level, this.#reader),
      this.#root,
      from,
      afterStart,
    );
    // Keys with a prefix are contiguous, so the first miss ends the listing;
    // each step either returns or consumes one entry.
    for (let entry = cursor.current; entry !== null; entry = cursor.current) {
      if (prefix !== undefined && !hasPrefix(entry.key, prefix)) break;
      if (entries.length === limit) return { entries, more: true };
      entries.push({ key: entry.key.slice(), value: entry.value.slice() });
      cursor.next();
    }
    return { entries, more: false };
  }

  /**
   * Applies sorted, key-unique `changes` (`value === null` deletes) copy-on-write
   * through `w`: each changed node is written once to a new block (with the
   * node it replaces as DIFF base) and the replaced block released; unchanged
   * subtrees are shared. Returns the new root (null when empty); afterwards
   * this catalog reads the new tree: nodes it wrote are cached, others are
   * read through the constructor's reader, which must by then see this CP's
   * blocks. Throws before writing anything when the batch is unsorted, has a
   * duplicate, or a key or value of a bad size. If it throws later (a corrupt
   * node, a writer out of blocks), the CP must be abandoned; this catalog
   * keeps reading the old root.
   *
   * @example
   * ```ts
   * import type { Volume } from "../volume/volume.ts";
   * declare const catalog: Catalog;
   * declare const volume: Volume;
   * const enc = new TextEncoder();
   * const root = catalog.commit([
   *   { key: enc.encode("a"), value: enc.encode("record of a") },
   *   { key: enc.encode("b"), value: null }, // delete
   * ], volume.beginCp());
   * ```
   */
  commit(changes: CatalogChange[], w: CpWriter): BlockPtr | null {
    validateChanges(changes);
    const root = this.#root;
    if (!isU32(w.cp) || w.cp < 1 || (root !== null && w.cp <= root.birth)) {
      throw new RangeError(
        `catalog: CP ${w.cp} must be a u32 above the root's birth CP ${root?.birth ?? 0}`,
      );
    }
    const pass = new CommitPass(
      w,
      (ptr, level) => this.#load(ptr, level, w),
      // Decoding each written node re-verifies the encoder's output before
      // the CP commits, and warms the cache for reads of the new tree.
      (ptr, bytes) => this.#cache.set(this.#decode(ptr, bytes)),
    );
    this.#root = pass.run(root, changes);
    return this.root;
  }

  /**
   * Visits every node block of the tree in pre-order (to rebuild the
   * free-space map at open) and, if given, every entry in key order. The
   * arguments are fresh copies. With `sinceCp`, only nodes born after it and
   * the entries of those leaves: a node is rewritten whenever a child is, so a
   * subtree born at or before `sinceCp` is skipped unread. A node that fails
   * to load (damaged, stale) throws, unless `onDamaged` is given: then it
   * hears the node and the walk goes on without its subtree (an online verify
   * lists what it can reach).
   *
   * @example
   * ```ts
   * declare const catalog: Catalog;
   * const live = new Set<number>();
   * catalog.walk((node) => live.add(node.block));
   * ```
   */
  walk(
    visitNode: (ptr: BlockPtr) => void,
    visitEntry?: (key: Uint8Array, value: Uint8Array) => void,
    opts: {
      sinceCp?: number;
      onDamaged?: (ptr: BlockPtr, error: CatalogNodeError) => void;
    } = {},
  ): void {
    const { sinceCp = 0, onDamaged } = opts;
    // Recursion depth is the tree height, at most MAX_LEVEL + 1.
    const visit = (ptr: BlockPtr, level: number | null): void => {
      if (ptr.birth <= sinceCp) return;
      visitNode({ block: ptr.block, birth: ptr.birth });
      let node: Node;
      try {
        // Leaves are read once each here: keep them out of the cache.
        node = this.#load(ptr, level, this.#reader, level !== 0);
      } catch (e) {
        if (onDamaged === undefined || !(e instanceof CatalogNodeError)) throw e;
        onDamaged({ block: ptr.block, birth: ptr.birth }, e);
        return;
      }
      if (node.level > 0) {
        for (const child of node.children) visit(child, node.level - 1);
      } else if (visitEntry !== undefined) {
        for (let i = 0; i < node.keys.length; i++) {
          visitEntry(node.keys[i].slice(), node.values[i].slice());
        }
      }
    };
    if (this.#root !== null) visit(this.#root, null);
  }

  /**
   * Pointers of the nodes written after CP `sinceCp` (birth > sinceCp), in
   * pre-order. A node is rewritten whenever a child is, so only those
   * subtrees are read.
   *
   * @example
   * ```ts
   * declare const catalog: Catalog;
   * declare const lastSyncedCp: number;
   * declare function sendMetaBlock(block: number): void;
   * for (const ptr of catalog.changedNodes(lastSyncedCp)) sendMetaBlock(ptr.block);
   * ```
   */
  changedNodes(sinceCp: number): BlockPtr[] {
    const out: BlockPtr[] = [];
    this.walk((ptr) => out.push(ptr), undefined, { sinceCp });
    return out;
  }

  /** The node at `ptr`, from the cache or decoded from `reader`, checked against the pointer. */
  #load(ptr: BlockPtr, level: number | null, reader: BlockReader, cache = true): Node {
    let node = this.#cache.get(ptr);
    if (node === undefined) {
      node = this.#decode(ptr, reader.readBlock(ptr.block));
      if (cache) this.#cache.set(node);
    }
    if (level !== null && node.level !== level) {
      throw new CatalogNodeError(ptr.block, `level ${node.level} where level ${level} belongs`);
    }
    return node;
  }

  #decode(ptr: BlockPtr, bytes: Uint8Array): Node {
    const node = decodeNode(bytes, ptr.block);
    if (node.birth !== ptr.birth) {
      throw new CatalogNodeError(
        ptr.block,
        `written in CP ${node.birth} but its pointer expects CP ${ptr.birth} (stale or misdirected)`,
      );
    }
    return node;
  }
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Rejects a batch the tree cannot take, before anything is written. */
function validateChanges(changes: readonly CatalogChange[]): void {
  if (!Array.isArray(changes)) throw new TypeError("catalog: changes must be an array");
  for (let i = 0; i < changes.length; i++) {
    const { key, value } = changes[i];
    if (!(key instanceof Uint8Array) || key.length < 1 || key.length > MAX_KEY_BYTES) {
      throw new RangeError(`catalog: change ${i}: key must be 1..${MAX_KEY_BYTES} bytes`);
    }
    if (value !== null && (!(value instanceof Uint8Array) || value.length > MAX_VALUE_BYTES)) {
      throw new RangeError(
        `catalog: change ${i}: value must be null or 0..${MAX_VALUE_BYTES} bytes`,
      );
    }
    if (i > 0 && compareBytes(changes[i - 1].key, key) >= 0) {
      throw new RangeError(
        `catalog: change ${i}: changes must be sorted by key with no duplicates`,
      );
    }
  }
}

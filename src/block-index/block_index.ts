/**
 * The block index: digest (32 bytes) -> location, an open-addressing table in wasm memory
 * (linear probing, backward-shift deletion, 40 bytes per slot, load <= 3/4, doubling).
 *
 * @module
 */

import { DIGEST_SIZE } from "../hash/blake3.ts";
import { type BlockDiffExports, check, instantiate, MemoryView } from "../wasm/block-diff.ts";

/** Keys per wasm call of the batch operations (128 KiB of keys). */
const BATCH = 4096;

function checkDigest(digest: Uint8Array): void {
  check(
    digest instanceof Uint8Array && digest.length === DIGEST_SIZE,
    "BlockIndex: a digest is 32 bytes",
  );
}

function checkLocation(location: number): void {
  check(
    Number.isSafeInteger(location) && location >= 0,
    `BlockIndex: location ${location} is not an integer in [0, 2^53)`,
  );
}

/**
 * Maps block digests to 64-bit locations (non-negative integers < 2^53 as JS numbers).
 * Each BlockIndex owns a wasm instance (its own memory), so any number may coexist.
 *
 * @example
 * ```ts
 * import { blake3 } from "../hash/blake3.ts";
 * const index = new BlockIndex();
 * const d = blake3(new Uint8Array(4096));
 * index.insert(d, 12345);
 * index.lookup(d); // 12345
 * index.remove(d); // true
 * index.lookup(d); // -1
 * ```
 */
export class BlockIndex {
  readonly #x: BlockDiffExports;
  readonly #mem: MemoryView;
  readonly #key: number;
  readonly #keys: number;
  readonly #values: number;

  /** @param initialCapacity entries to hold before the first growth (default 1024). */
  constructor(initialCapacity = 1024) {
    check(
      Number.isInteger(initialCapacity) && initialCapacity >= 0 && initialCapacity < 2 ** 32,
      `BlockIndex: initialCapacity ${initialCapacity} is not a u32`,
    );
    this.#x = instantiate();
    const seed = crypto.getRandomValues(new Uint32Array(4));
    if (this.#x.indexSetup(initialCapacity, BATCH, seed[0], seed[1], seed[2], seed[3]) !== 0) {
      throw new RangeError(`BlockIndex: cannot reserve memory for ${initialCapacity} entries`);
    }
    this.#mem = new MemoryView(this.#x.memory);
    this.#key = this.#x.indexKey();
    this.#keys = this.#x.indexBatchKeys();
    this.#values = this.#x.indexBatchValues();
  }

  /**
   * Number of entries.
   *
   * @example
   * ```ts
   * new BlockIndex().size; // 0
   * ```
   */
  get size(): number {
    return this.#x.indexSize();
  }

  /**
   * Slots of the table (a power of two; grows by doubling when 3/4 full).
   *
   * @example
   * ```ts
   * new BlockIndex(1000).slots; // 2048
   * ```
   */
  get slots(): number {
    return this.#x.indexSlots();
  }

  /**
   * Adds `digest -> location`, replacing an existing location.
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * declare const digest: Uint8Array;
   * index.insert(digest, 4096 * 7);
   * ```
   */
  insert(digest: Uint8Array, location: number): void {
    checkDigest(digest);
    checkLocation(location);
    this.#mem.u8.set(digest, this.#key);
    if (this.#x.indexInsert(location) !== 0) throw new RangeError("BlockIndex: out of memory");
  }

  /**
   * Location of `digest`, -1 when absent.
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * declare const digest: Uint8Array;
   * declare function sendReference(location: number): void;
   * const where = index.lookup(digest);
   * if (where >= 0) sendReference(where);
   * ```
   */
  lookup(digest: Uint8Array): number {
    checkDigest(digest);
    this.#mem.u8.set(digest, this.#key);
    return this.#x.indexLookup();
  }

  /**
   * Removes `digest`; true when it was present.
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * declare const digest: Uint8Array;
   * index.remove(digest); // true, then false
   * ```
   */
  remove(digest: Uint8Array): boolean {
    checkDigest(digest);
    this.#mem.u8.set(digest, this.#key);
    return this.#x.indexRemove() !== 0;
  }

  /** Splits n keys into wasm-sized batches; `fn(from, m)` runs one batch whose keys are set. */
  #batches(digests: Uint8Array, fn: (from: number, m: number) => void): number {
    check(
      digests instanceof Uint8Array && digests.length % DIGEST_SIZE === 0,
      "BlockIndex: digests must be n * 32 bytes",
    );
    const n = digests.length / DIGEST_SIZE;
    for (let from = 0; from < n; from += BATCH) {
      const m = Math.min(BATCH, n - from);
      this.#mem.u8.set(
        digests.subarray(from * DIGEST_SIZE, (from + m) * DIGEST_SIZE),
        this.#keys,
      );
      fn(from, m);
    }
    return n;
  }

  /**
   * Inserts `digests[i*32 .. i*32+32) -> locations[i]` for every i (later pairs win).
   *
   * @example
   * ```ts
   * import { hashBlocks } from "../hash/blake3.ts";
   * declare const index: BlockIndex;
   * const blocks = new Uint8Array(3 * 4096);
   * index.insertBatch(hashBlocks(blocks), Float64Array.from([0, 4096, 8192]));
   * ```
   */
  insertBatch(digests: Uint8Array, locations: Float64Array): void {
    check(
      locations.length * DIGEST_SIZE === digests.length,
      "BlockIndex.insertBatch: one location per digest",
    );
    for (let i = 0; i < locations.length; i++) checkLocation(locations[i]);
    this.#batches(digests, (from, m) => {
      // Insertion can grow memory: take the f64 view before, it is not read after.
      this.#mem.f64.set(locations.subarray(from, from + m), this.#values / 8);
      if (this.#x.indexInsertBatch(m) !== m) throw new RangeError("BlockIndex: out of memory");
    });
  }

  /**
   * Writes the location of each digest (or -1) to `out[i]`; `out.length` >= digest count.
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * declare const digests: Uint8Array;
   * const where = new Float64Array(digests.length / 32);
   * index.lookupBatch(digests, where);
   * ```
   */
  lookupBatch(digests: Uint8Array, out: Float64Array): void {
    check(
      out.length * DIGEST_SIZE >= digests.length,
      "BlockIndex.lookupBatch: out needs one slot per digest",
    );
    this.#batches(digests, (from, m) => {
      this.#x.indexLookupBatch(m);
      const at = this.#values / 8;
      out.set(this.#mem.f64.subarray(at, at + m), from);
    });
  }

  /**
   * Removes every digest; returns how many were present.
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * declare const digests: Uint8Array;
   * const removed = index.removeBatch(digests);
   * ```
   */
  removeBatch(digests: Uint8Array): number {
    let removed = 0;
    this.#batches(digests, (_from, m) => {
      removed += this.#x.indexRemoveBatch(m);
    });
    return removed;
  }

  /**
   * Removes every entry (the table keeps its size).
   *
   * @example
   * ```ts
   * declare const index: BlockIndex;
   * index.clear();
   * index.size; // 0
   * ```
   */
  clear(): void {
    this.#x.indexClear();
  }
}

/**
 * Test double of the volume: blocks in a Map, and a CP writer that enforces
 * the copy-on-write contract the catalog is written against.
 *
 * - `allocate` never hands out a block live in the last committed tree, nor one
 *   twice in a CP; it reuses blocks released by earlier, committed CPs.
 * - `write` refuses live blocks (no overwrite in place), unallocated blocks,
 *   wrong sizes, and DIFF bases that the destination would not hold.
 * - `release` accepts only live blocks, once.
 * - `commit` checks that the new tree's blocks are exactly the old live ones
 *   minus the released plus the written ones, and that every block ever
 *   written is either live or free (released): nothing leaks, nothing is
 *   freed twice.
 *
 * @module
 */

import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import {
  type BlockKind,
  type BlockPtr,
  type BlockReader,
  type CpWriter,
} from "../../../src/storage/volume/types.ts";
import { uniform } from "../../support/prng.ts";
import { checkTree, expect } from "./tree_check.ts";

/** The blocks of one volume and the live set of its last committed catalog. */
export class MemVolume implements BlockReader {
  readonly blocks = new Map<number, Uint8Array>();
  /** Blocks of the last committed tree. */
  live = new Set<number>();
  /** Blocks released by committed CPs: reusable, and still holding old bytes. */
  readonly free = new Set<number>();
  /** Every block ever written. */
  readonly everWritten = new Set<number>();
  root: BlockPtr | null = null;
  cp = 0;
  reads = 0;
  #next = 2; // blocks 0 and 1 are the superblock slots
  readonly #rng: () => number;

  constructor(seed = 1) {
    this.#rng = uniform(seed);
  }

  readBlock(block: number): Uint8Array {
    const bytes = this.blocks.get(block);
    if (bytes === undefined) throw new Error(`read of block ${block}, never written`);
    this.reads++;
    return bytes;
  }

  /** Starts the next CP. */
  begin(): MemCpWriter {
    return new MemCpWriter(this, this.cp + 1);
  }

  /** Picks a block for `writer`: a random free one, or a new one. */
  takeBlock(): number {
    if (this.free.size > 0 && this.#rng() < 0.9) {
      const pick = Math.floor(this.#rng() * this.free.size);
      let i = 0;
      for (const block of this.free) {
        if (i++ === pick) {
          this.free.delete(block);
          return block;
        }
      }
    }
    return this.#next++;
  }

  /** Commits `writer`'s CP with `root` as the new catalog root, checking the block accounting. */
  commit(writer: MemCpWriter, root: BlockPtr | null): void {
    assert.equal(writer.cp, this.cp + 1);
    for (const block of writer.allocated) {
      expect(writer.written.has(block), () => `block ${block} allocated but never written (leak)`);
    }
    const newLive = liveBlocks(this, root);
    const expected = new Set([...this.live].filter((b) => !writer.released.has(b)));
    for (const block of writer.written.keys()) expected.add(block);
    assert.deepEqual(
      [...newLive].sort((a, b) => a - b),
      [...expected].sort((a, b) => a - b),
      "live blocks after the CP != old live - released + written",
    );
    for (const block of writer.released) this.free.add(block);
    this.live = newLive;
    this.root = root;
    this.cp = writer.cp;
    // Released and live blocks partition everything ever written.
    for (const block of this.live) {
      expect(!this.free.has(block), () => `block ${block} live and free`);
    }
    assert.equal(this.live.size + this.free.size, this.everWritten.size);
    for (const block of this.everWritten) {
      expect(this.live.has(block) || this.free.has(block), () => `block ${block} lost`);
    }
  }
}

/** The blocks of the tree at `root`, found by the independent tree check. */
export function liveBlocks(reader: BlockReader, root: BlockPtr | null): Set<number> {
  return new Set(checkTree(reader, root).levels.flat().map((ptr) => ptr.block));
}

/** One CP in progress on a {@link MemVolume}. */
export class MemCpWriter implements CpWriter {
  readonly cp: number;
  readonly allocated = new Set<number>();
  /** Written block -> its DIFF base. */
  readonly written = new Map<number, number>();
  readonly released = new Set<number>();
  readonly #volume: MemVolume;

  constructor(volume: MemVolume, cp: number) {
    this.#volume = volume;
    this.cp = cp;
  }

  readBlock(block: number): Uint8Array {
    // During a CP the catalog reads only the committed tree.
    expect(this.#volume.live.has(block), () => `CP read of block ${block}, not live`);
    return this.#volume.readBlock(block);
  }

  allocate(): number {
    const block = this.#volume.takeBlock();
    expect(!this.#volume.live.has(block), () => `allocator handed out live block ${block}`);
    expect(!this.allocated.has(block), () => `block ${block} allocated twice`);
    this.allocated.add(block);
    return block;
  }

  write(block: number, data: Uint8Array, kind: BlockKind, base: number): void {
    assert.ok(
      !this.#volume.live.has(block),
      `copy-on-write violated: write to live block ${block}`,
    );
    expect(this.allocated.has(block), () => `write to unallocated block ${block}`);
    expect(!this.written.has(block), () => `block ${block} written twice in one CP`);
    assert.equal(data.length, BLOCK_SIZE);
    assert.equal(kind, "meta");
    expect(base === 0 || this.#volume.live.has(base), () => `DIFF base ${base} is not live`);
    this.written.set(block, base);
    this.#volume.blocks.set(block, data.slice());
    this.#volume.everWritten.add(block);
  }

  release(block: number): void {
    expect(this.#volume.live.has(block), () => `release of block ${block}, not live`);
    expect(!this.released.has(block), () => `block ${block} released twice`);
    this.released.add(block);
  }
}

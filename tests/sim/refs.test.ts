/**
 * The simulator's damage at rest in a volume block (`sim/refs.ts`): flipped
 * bits are damage while the block holds what they left, and undoing them
 * (before a promotion) flips them back, every one of a block flipped twice;
 * a block written again since is not damaged, even when the new bytes hold
 * the damaged value at that byte, and undoing must leave them alone (it
 * flipped a bit of them: a block the simulator itself corrupted failed
 * `deno task sim --seed 6 --trial 74` with a 500 on the promoted side).
 *
 * @module
 */
import assert from "node:assert/strict";
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { MemoryFileSystem } from "../../src/storage/fs/memory.ts";
import { flip, flipAgain, repair, stillDamaged } from "../../sim/refs.ts";

const PATH = "/volume.dat";
/** Bit 5 of byte 259 of block 1. */
const BIT = (BLOCK_SIZE + 259) * 8 + 5;

/** A file of two blocks: `block1` is the second. */
function disk(block1: Uint8Array): MemoryFileSystem {
  const fs = new MemoryFileSystem();
  writeBlock(fs, 0, new Uint8Array(BLOCK_SIZE).fill(1));
  writeBlock(fs, 1, block1);
  return fs;
}

function writeBlock(fs: MemoryFileSystem, block: number, bytes: Uint8Array): void {
  const fd = fs.openSync(PATH, fs.existsSync(PATH) ? "r+" : "w");
  fs.writeSync(fd, bytes, 0, bytes.length, block * BLOCK_SIZE);
  fs.closeSync(fd);
}

function block1(fs: MemoryFileSystem): Uint8Array {
  return fs.readFileSync(PATH).slice(BLOCK_SIZE, 2 * BLOCK_SIZE);
}

Deno.test("sim damage: flipped bits are damage until undone, and undoing restores the bytes", () => {
  const original = new Uint8Array(BLOCK_SIZE).map((_, i) => i * 7);
  const fs = disk(original);
  const d = flip(fs, PATH, BIT, true, true);
  assert.notDeepEqual(block1(fs), original);
  assert.equal(stillDamaged(fs, d), true);
  flipAgain(fs, d, BIT + 800 * 8);
  assert.equal(stillDamaged(fs, d), true, "a second flip in the block joins the damage");
  repair(fs, d);
  assert.deepEqual(block1(fs), original);
  assert.equal(stillDamaged(fs, d), false);
});

Deno.test("sim damage: a block written again is not damaged, even with the damaged byte where it was", () => {
  const fs = disk(new Uint8Array(BLOCK_SIZE).map((_, i) => i * 7));
  const d = flip(fs, PATH, BIT, true, true);
  const damagedByte = fs.readFileSync(PATH)[BIT >> 3];
  // New content for the block (another object's), which happens to hold that value there.
  const rewritten = new Uint8Array(BLOCK_SIZE).map((_, i) => i * 13 + 1);
  rewritten[259] = damagedByte;
  writeBlock(fs, 1, rewritten);
  assert.equal(stillDamaged(fs, d), false);
  repair(fs, d);
  assert.deepEqual(block1(fs), rewritten, "the new bytes are left alone");
});

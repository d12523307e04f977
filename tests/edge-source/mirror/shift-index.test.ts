/**
 * The shifted-content index: an indexed block is offered wherever it lands
 * in a new payload off the 4 KiB grid, with its digest, and an accepted one
 * ends the offers it overlaps; random-looking
 * payloads are not searched; a phrase shared with an indexed block is no
 * candidate (the sketch refutes it), nor keeps a block out of the index
 * (blocks sharing keys are all candidates, the newest first); the index
 * starts over at its bound.
 *
 * @module
 */
import assert from "node:assert/strict";
import { equalBytes } from "../../../src/bytes/mod.ts";
import { hashBlocks } from "../../../src/hash/blake3.ts";
import { ShiftIndex } from "../../../src/edge-source/mirror/shift-index.ts";
import { Prng } from "../../../src/runtime/random.ts";
import { text } from "../../support/text.ts";

const BLOCK = 4096;

function indexed(payload: Uint8Array, shifts = new ShiftIndex()): ShiftIndex {
  const whole = payload.subarray(0, BLOCK * Math.floor(payload.length / BLOCK));
  shifts.add(payload, hashBlocks(whole), shifts.anchorsOf(payload)!);
  return shifts;
}

/** Every block `search` offers in `now`, in order, none accepted. */
function offers(shifts: ShiftIndex, now: Uint8Array): Array<{ at: number; digest: Uint8Array }> {
  const out: Array<{ at: number; digest: Uint8Array }> = [];
  shifts.search(now, shifts.anchorsOf(now)!, (at, digest) => {
    out.push({ at, digest: digest.slice() });
    return false;
  });
  return out;
}

function moved(payload: Uint8Array, by: number): Uint8Array {
  const out = text(99, by + payload.length); // a different prefix, then the payload
  out.set(payload, by);
  return out;
}

Deno.test("shift index: the blocks of a payload are found where an insertion moved them", () => {
  const old = text(1, 16 * BLOCK + 100);
  const shifts = indexed(old);
  const digests = hashBlocks(old.subarray(0, 16 * BLOCK));
  for (const by of [1, 777, 4095, 4097]) {
    const now = moved(old, by);
    const found = offers(shifts, now);
    assert.deepEqual(found.map((c) => c.at), Array.from({ length: 16 }, (_, b) => by + b * BLOCK));
    for (const [b, c] of found.entries()) {
      assert.deepEqual(c.digest, digests.subarray(b * 32, b * 32 + 32), `block ${b}`);
    }
  }
  // Moved by whole blocks: the aligned lookup's, not a candidate here.
  const aligned = moved(old, 2 * BLOCK);
  assert.deepEqual(offers(shifts, aligned), []);
});

Deno.test("shift index: random-looking payloads are neither indexed nor searched", () => {
  const random = new Prng(2).fill(new Uint8Array(8 * BLOCK));
  assert.equal(new ShiftIndex().anchorsOf(random), null);
  assert.equal(new ShiftIndex().anchorsOf(text(3, BLOCK - 1)), null, "shorter than a block");
});

Deno.test("shift index: a phrase shared with an indexed block is no candidate", () => {
  const old = text(4, 4 * BLOCK);
  const shifts = indexed(old);
  // Each block's first 600 bytes (its anchor among them), in new surroundings.
  const now = text(5, 8 * BLOCK);
  const anchors = shifts.anchorsOf(old)!;
  for (let b = 0; b < 4; b++) {
    const first = anchors.find((p) => p >= b * BLOCK)!;
    assert.ok(first - b * BLOCK < 600 - 32, "this seed anchors each block early");
    now.set(old.subarray(b * BLOCK, b * BLOCK + 600), b * 2 * BLOCK + 5);
  }
  assert.deepEqual(offers(shifts, now), []);
});

/** Where `now` has a candidate with block `b`'s digest of `payload` (8 blocks), by `b`. */
function startsOf(shifts: ShiftIndex, now: Uint8Array, payload: Uint8Array): Array<number | null> {
  const digests = hashBlocks(payload.subarray(0, 8 * BLOCK));
  const found = offers(shifts, now);
  return Array.from({ length: 8 }, (_, b) => {
    const d = digests.subarray(b * 32, b * 32 + 32);
    return found.find((c) => equalBytes(c.digest, d))?.at ?? null;
  });
}

Deno.test("shift index: two copies at other alignments are both candidates", () => {
  const old = text(16, 8 * BLOCK);
  const copy = moved(old, 100); // the same content at another alignment, indexed after it
  const shifts = indexed(copy, indexed(old));
  const now = moved(old, 2000);
  assert.deepEqual(
    startsOf(shifts, now, old),
    Array.from({ length: 8 }, (_, b) => 2000 + b * BLOCK),
  );
  // The copy's blocks from its block 1 (its block 0 holds 100 bytes of its own), 100 bytes earlier.
  assert.deepEqual(
    startsOf(shifts, now, copy),
    [null, ...Array.from({ length: 7 }, (_, b) => 1900 + (b + 1) * BLOCK)],
  );
  // Accepting each block offered: the copy's overlapping ones are not offered after it.
  const accepted: number[] = [];
  shifts.search(now, shifts.anchorsOf(now)!, (at) => accepted.push(at) > 0);
  assert.deepEqual(accepted, Array.from({ length: 8 }, (_, b) => 2000 + b * BLOCK));
});

Deno.test("shift index: blocks that share every key but differ between the sketch's samples are both candidates", () => {
  const a = text(22, 8 * BLOCK);
  const b = a.slice();
  for (let k = 0; k < 8; k++) b[k * BLOCK + 2000] ^= 1; // the same keys but near byte 2000
  const shifts = indexed(b, indexed(a));
  const now = moved(b, 333);
  const want = Array.from({ length: 8 }, (_, k) => 333 + k * BLOCK);
  assert.deepEqual(startsOf(shifts, now, b), want, "b's blocks, where they moved");
  assert.deepEqual(startsOf(shifts, now, a), want, "and a's: only their bytes tell them apart");
  const found = offers(shifts, now);
  const bFirst = hashBlocks(b.subarray(0, BLOCK));
  assert.ok(equalBytes(found[0].digest, bFirst), "the newest first");
});

Deno.test("shift index: a block whose first anchor's key another block holds is found too", () => {
  const a = text(20, 4 * BLOCK);
  const b = text(21, 4 * BLOCK);
  // Each block of b opens as a's block does up to its first key: the same phrase, the same key.
  const anchors = [...new ShiftIndex().anchorsOf(a)!];
  for (let k = 0; k < 4; k++) {
    const end = anchors.find((p) => p >= k * BLOCK)! + 32;
    assert.ok(end - k * BLOCK < 2048, "this seed anchors each block in its first half");
    b.set(a.subarray(k * BLOCK, end), k * BLOCK);
  }
  const shifts = indexed(b, indexed(a));
  const now = moved(b, 777);
  const digests = hashBlocks(b);
  const found = offers(shifts, now);
  for (let k = 0; k < 4; k++) {
    const d = digests.subarray(k * 32, k * 32 + 32);
    assert.equal(found.find((c) => equalBytes(c.digest, d))?.at, 777 + k * BLOCK, `block ${k}`);
  }
});

Deno.test("shift index: it starts over at its bound", () => {
  const shifts = new ShiftIndex(20);
  const first = text(6, 16 * BLOCK);
  indexed(first, shifts);
  assert.equal(shifts.size, 16, "one block each");
  indexed(text(7, 16 * BLOCK), shifts); // 32 > 20: the first payload's entries are gone
  assert.equal(shifts.size, 16);
  const now = moved(first, 5);
  assert.deepEqual(offers(shifts, now), []);
});

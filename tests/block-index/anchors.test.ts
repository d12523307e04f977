/**
 * Content-defined anchors: the wasm scan finds exactly the positions the
 * definition names (checked against a plain one-position-at-a-time
 * reference), keeps them under a shift of the content, and stops at its cap
 * on degenerate content.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ANCHOR_BITS, AnchorFinder, MAX_ANCHORS } from "../../src/block-index/anchors.ts";
import { MAX_PAYLOAD_LENGTH } from "../../src/protocol/log-frame/mod.ts";
import { Prng } from "../../src/runtime/random.ts";
import { text } from "../support/text.ts";

/** The definition: the little-endian u32 at p, times 0x9e3779b1 mod 2^32, below 2^(32 - bits). */
function reference(bytes: Uint8Array): number[] {
  const out: number[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = 0; p + 4 <= bytes.length; p++) {
    const h = Math.imul(view.getUint32(p, true), 0x9e3779b1) >>> 0;
    if (h < 2 ** (32 - ANCHOR_BITS)) out.push(p);
  }
  return out;
}

const finder = new AnchorFinder();

Deno.test("anchors: the positions the definition names, at every length and after longer inputs", () => {
  const rng = new Prng(1);
  const long = rng.fill(new Uint8Array(200_000));
  finder.find(long); // leaves stale bytes past every shorter input below
  for (let len = 0; len < 70; len++) {
    const b = rng.fill(new Uint8Array(len));
    b.fill(0, 0, len >> 1); // zeros are anchors (0 * k = 0): every length has some
    assert.deepEqual([...finder.find(b)], reference(b), `length ${len}`);
  }
  for (const b of [rng.fill(new Uint8Array(65_537)), text(2, 300_001), long]) {
    assert.deepEqual([...finder.find(b)], reference(b));
  }
});

Deno.test("anchors: content moved by any number of bytes keeps its anchors", () => {
  const data = text(3, 100_000);
  const base = [...finder.find(data)];
  assert.ok(base.length > 100, `text has anchors (${base.length})`);
  for (const shift of [1, 3, 100, 4095, 4097]) {
    const moved = new Uint8Array(shift + data.length);
    moved.set(data, shift);
    const got = new Set(finder.find(moved));
    assert.deepEqual(base.filter((p) => !got.has(p + shift)), [], `shift ${shift}`);
  }
});

Deno.test("anchors: degenerate content stops at the cap; an oversized payload is refused", () => {
  const zeros = new Uint8Array(MAX_PAYLOAD_LENGTH); // every position is an anchor
  const got = finder.find(zeros);
  assert.equal(got.length, MAX_ANCHORS);
  assert.equal(got[MAX_ANCHORS - 1], MAX_ANCHORS - 1);
  assert.throws(
    () => finder.find(new Uint8Array(MAX_PAYLOAD_LENGTH + 1)),
    /at most 1048576 bytes, got 1048577/,
  );
});

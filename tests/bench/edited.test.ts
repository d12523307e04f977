/**
 * The `edited` workload: a pure function of the seed; each document comes
 * back once under a new key as the same bytes after a short insertion, and
 * is text (the shifted-content search skips random-looking payloads, so a
 * random document would measure nothing).
 *
 * @module
 */
import assert from "node:assert/strict";
import { DELAY, edited, INSERT } from "../../bench/workloads/edited.ts";
import type { Op } from "../../bench/workloads/types.ts";
import { looksRandom } from "../../src/bytes/entropy.ts";
import { equalBytes } from "../../src/bytes/mod.ts";

function ops(seed: number, n: number): Op[] {
  const w = edited({ seed, quick: true });
  return Array.from({ length: n }, () => w.next()!);
}

function body(op: Op): Uint8Array {
  const b = op.body();
  assert.ok(b instanceof Uint8Array);
  assert.equal(b.length, op.bytes);
  return b;
}

Deno.test("edited: each document comes back under a new key, moved by a short insertion", () => {
  const list = ops(1, 200);
  const originals = new Map(
    list.filter((o) => o.key.startsWith("edited/v1/")).map((o) => [o.key.slice(10), o]),
  );
  const copies = list.filter((o) => o.key.startsWith("edited/v2/"));
  assert.ok(copies.length >= 40, `${copies.length} edited copies in 200 ops`);
  for (const copy of copies.slice(0, 12)) {
    const original = originals.get(copy.key.slice(10))!;
    const at = list.indexOf(copy) - list.indexOf(original);
    assert.ok(at >= DELAY.min, `the copy comes ${at} ops after its original`);
    const [a, b] = [body(original), body(copy)];
    const inserted = b.length - a.length;
    assert.ok(inserted >= INSERT.min && inserted <= INSERT.max, `${inserted} bytes inserted`);
    assert.ok(equalBytes(b.subarray(inserted), a), "then the original's bytes");
    assert.ok(!looksRandom(a), "text");
  }
});

Deno.test("edited: the same seed makes the same ops, another seed others", () => {
  const keys = (seed: number) => ops(seed, 100).map((o) => `${o.key}:${o.bytes}`);
  assert.deepEqual(keys(3), keys(3));
  assert.notDeepEqual(keys(3), keys(4));
  const [a, b] = [ops(5, 3), ops(5, 3)];
  assert.ok(equalBytes(body(a[2]), body(b[2])));
});

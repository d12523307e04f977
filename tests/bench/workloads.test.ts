import assert from "node:assert/strict";
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { fillXorshift, mixSeed, Rng, zipfTable } from "../../bench/lib/prng.ts";
import { MAX_BLOCKS } from "../../bench/workloads/aligned.ts";
import { MAX_WRITE, OBJECT_BYTES } from "../../bench/workloads/unaligned.ts";
import { WORKLOADS } from "../../bench/workloads/mod.ts";

function bodyBytes(b: Uint8Array | ReadableStream<Uint8Array>): Uint8Array {
  assert.ok(b instanceof Uint8Array);
  return b;
}

Deno.test("aligned: whole objects of 4 KiB..4 MiB, multiples of 4 KiB, distinct blocks", () => {
  const w = WORKLOADS.aligned({ seed: 7, quick: true });
  const seen = new Set<string>();
  const keys = new Set<string>();
  let big = 0;
  for (let i = 0; i < 60; i++) {
    const op = w.next()!;
    assert.equal(op.offset, undefined);
    assert.equal(op.bytes % BLOCK_SIZE, 0);
    assert.ok(op.bytes >= BLOCK_SIZE && op.bytes <= MAX_BLOCKS * BLOCK_SIZE);
    if (op.bytes > 64 * BLOCK_SIZE) big++;
    assert.ok(!keys.has(op.key));
    keys.add(op.key);
    const body = bodyBytes(op.body());
    assert.equal(body.length, op.bytes);
    for (let at = 0; at < body.length; at += BLOCK_SIZE) {
      const sig = Array.from(body.subarray(at, at + 16)).join(",");
      assert.ok(!seen.has(sig), "aligned blocks are all distinct");
      seen.add(sig);
    }
  }
  assert.ok(big > 5, "sizes spread up to MiBs");
});

Deno.test("workloads are deterministic for a seed and differ between seeds", () => {
  // realfiles sends files, whatever the seed (tests/bench/realfiles.test.ts).
  for (const name of Object.keys(WORKLOADS).filter((n) => n !== "realfiles")) {
    const a = WORKLOADS[name]({ seed: 3, quick: true });
    const b = WORKLOADS[name]({ seed: 3, quick: true });
    const c = WORKLOADS[name]({ seed: 4, quick: true });
    const [x, y, z] = [a.next()!, b.next()!, c.next()!];
    assert.equal(x.key, y.key);
    assert.equal(x.bytes, y.bytes);
    assert.deepEqual(bodyBytes(x.body()), bodyBytes(y.body()));
    assert.notDeepEqual(bodyBytes(x.body()).subarray(0, 64), bodyBytes(z.body()).subarray(0, 64));
  }
});

Deno.test("duplicate: about 75% of blocks repeat an earlier block's bytes", () => {
  const w = WORKLOADS.duplicate({ seed: 11, quick: true });
  const seen = new Set<string>();
  let blocks = 0;
  let repeats = 0;
  while (blocks < 20_000) {
    const body = bodyBytes(w.next()!.body());
    for (let at = 0; at < body.length; at += BLOCK_SIZE) {
      const sig = Array.from(body.subarray(at, at + 32)).join(",");
      if (seen.has(sig)) repeats++;
      seen.add(sig);
      blocks++;
    }
  }
  const share = repeats / blocks;
  assert.ok(share > 0.72 && share < 0.78, `repeat share ${share}`);
});

Deno.test("unaligned: ranged writes inside the 16 MiB objects that the setup creates", async () => {
  const w = WORKLOADS.unaligned({ seed: 5, quick: true });
  const setup = w.setup();
  assert.ok(setup.length > 0);
  const keys = new Set(setup.map((op) => op.key));
  // The setup body is a stream of exactly 16 MiB.
  const stream = setup[0].body();
  assert.ok(stream instanceof ReadableStream);
  let n = 0;
  for await (const chunk of stream) n += chunk.length;
  assert.equal(n, OBJECT_BYTES);
  let small = 0;
  let unalignedOffsets = 0;
  for (let i = 0; i < 2000; i++) {
    const op = w.next()!;
    assert.ok(keys.has(op.key));
    assert.ok(op.offset !== undefined && op.offset >= 0);
    assert.ok(op.bytes >= 1 && op.bytes <= MAX_WRITE);
    assert.ok(op.offset + op.bytes <= OBJECT_BYTES);
    if (op.bytes < BLOCK_SIZE) small++;
    if (op.offset % BLOCK_SIZE !== 0) unalignedOffsets++;
    if (i < 50) assert.equal(bodyBytes(op.body()).length, op.bytes);
  }
  assert.ok(
    small > 200 && unalignedOffsets > 1900,
    `${small} small, ${unalignedOffsets} unaligned`,
  );
});

Deno.test("fillXorshift fills exactly its range, aligned or not; Rng stays in bounds", () => {
  for (const from of [0, 1, 3, 4]) {
    for (const length of [0, 1, 5, 4096, 4099]) {
      const buf = new Uint8Array(from + length + 8);
      fillXorshift(buf, mixSeed(1, 2), from, length);
      assert.ok(buf.subarray(0, from).every((x) => x === 0), "nothing before the range");
      assert.ok(buf.subarray(from + length).every((x) => x === 0), "nothing after the range");
      if (length >= 64) {
        const zeros = buf.subarray(from, from + length).filter((x) => x === 0).length;
        assert.ok(zeros < length / 32, `random-looking (${zeros} zeros in ${length})`);
      }
    }
  }
  const r = new Rng(9);
  for (let i = 0; i < 1000; i++) {
    const v = r.logInt(1, 100);
    assert.ok(v >= 1 && v <= 100);
    const u = r.int(3, 5);
    assert.ok(u >= 3 && u <= 5);
  }
});

Deno.test("Rng.below, odds and zipf: in bounds, with the intended frequencies", () => {
  const r = new Rng(21);
  const n = 200_000;
  const counts = new Uint32Array(10);
  let heads = 0;
  const table = zipfTable(1000);
  const ranks = new Uint32Array(1000);
  for (let i = 0; i < n; i++) {
    counts[r.below(10)]++;
    if (r.odds(0.25)) heads++;
    ranks[r.zipf(table)]++;
  }
  for (const c of counts) assert.ok(Math.abs(c / n - 0.1) < 0.005, `below: ${c}`);
  assert.ok(Math.abs(heads / n - 0.25) < 0.005, `odds: ${heads}`);
  // Log-uniform ranks: rank r gets ln((r+2)/(r+1)) / ln 1001 of the draws; every rank reachable.
  const expect = (rank: number) => n * Math.log((rank + 2) / (rank + 1)) / Math.log(1001);
  for (const rank of [0, 1, 9]) {
    assert.ok(Math.abs(ranks[rank] / expect(rank) - 1) < 0.1, `rank ${rank}: ${ranks[rank]}`);
  }
  assert.ok(table.every((x) => x < 1000) && table.includes(999) && table[0] === 0);
  assert.deepEqual(zipfTable(1), new Uint16Array(65536));
  assert.throws(() => zipfTable(0), RangeError);
});

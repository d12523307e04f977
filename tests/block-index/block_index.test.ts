import assert from "node:assert/strict";
import { BlockIndex } from "../../src/block-index/mod.ts";
import { Prng, seeded } from "../support/prng.ts";

/** A pool of distinct random digests, so that operations hit existing keys often. */
function digestPool(rng: Prng, n: number): Uint8Array[] {
  return Array.from({ length: n }, () => rng.bytes(32));
}

/** Checks every pool key against the model. */
function checkAll(index: BlockIndex, model: Map<string, number>, pool: Uint8Array[]): void {
  assert.deepEqual(index.size, model.size);
  for (const d of pool) {
    const got = index.lookup(d);
    const want = model.get(d.toHex()) ?? -1;
    if (got !== want) assert.deepEqual(got, want, `lookup ${d.toHex()}`);
  }
}

Deno.test(
  "BlockIndex: seeded random insert/lookup/remove against a Map, through growth",
  seeded(0x1dec, (seed) => {
    const rng = new Prng(seed);
    const pool = digestPool(rng, 6000);
    const index = new BlockIndex(16);
    const model = new Map<string, number>();
    const startSlots = index.slots;
    for (let step = 0; step < 100_000; step++) {
      const d = pool[rng.int(pool.length)];
      const key = d.toHex();
      const op = rng.int(10);
      if (op < 5) {
        const loc = rng.int(2 ** 32) * 4096 + rng.int(4096); // beyond 32 bits
        index.insert(d, loc);
        model.set(key, loc);
      } else if (op < 8) {
        assert.deepEqual(index.lookup(d), model.get(key) ?? -1);
      } else {
        assert.deepEqual(index.remove(d), model.delete(key));
      }
      if (step % 20_000 === 0) checkAll(index, model, pool);
    }
    checkAll(index, model, pool);
    assert.ok(index.slots > startSlots, "the table grew");
    assert.ok(index.size * 4 <= index.slots * 3, "load factor stays <= 3/4");
  }),
);

Deno.test(
  "BlockIndex: keys sharing their first 16 bytes (one long cluster)",
  seeded(77, (seed) => {
    // The home slot depends on the first 16 bytes only: these keys all collide, which drives
    // linear probing and backward-shift deletion through long wrapped clusters.
    const rng = new Prng(seed);
    const prefix = rng.bytes(16);
    const pool = Array.from({ length: 300 }, () => {
      const d = new Uint8Array(32);
      d.set(prefix);
      rng.fill(d.subarray(16));
      return d;
    });
    // Each table has its own secret seed, so where the cluster sits varies; with ten tables
    // some cluster wraps around the table end in practically every run.
    for (let table = 0; table < 10; table++) {
      const index = new BlockIndex(0);
      const model = new Map<string, number>();
      for (let step = 0; step < 5_000; step++) {
        const d = pool[rng.int(pool.length)];
        if (rng.int(3) === 0) {
          assert.deepEqual(index.remove(d), model.delete(d.toHex()));
        } else {
          index.insert(d, step);
          model.set(d.toHex(), step);
        }
      }
      checkAll(index, model, pool);
    }
  }),
);

Deno.test(
  "BlockIndex: batch operations against a Map",
  seeded(31337, (seed) => {
    const rng = new Prng(seed);
    const pool = digestPool(rng, 20_000); // > one wasm batch (4096)
    const index = new BlockIndex();
    const model = new Map<string, number>();
    for (let round = 0; round < 4; round++) {
      const n = 5000 + rng.int(5000);
      const digests = new Uint8Array(n * 32);
      const locations = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const d = pool[rng.int(pool.length)];
        digests.set(d, i * 32);
        locations[i] = rng.int(2 ** 20) * 4096;
        model.set(d.toHex(), locations[i]); // later pairs win, as in the index
      }
      index.insertBatch(digests, locations);
      assert.deepEqual(index.size, model.size);

      const out = new Float64Array(pool.length);
      const all = new Uint8Array(pool.length * 32);
      pool.forEach((d, i) => all.set(d, i * 32));
      index.lookupBatch(all, out);
      pool.forEach((d, i) => {
        if (out[i] !== (model.get(d.toHex()) ?? -1)) {
          assert.deepEqual(out[i], model.get(d.toHex()) ?? -1);
        }
      });

      const m = 3000;
      const gone = new Uint8Array(m * 32);
      let present = 0;
      const seen = new Set<string>();
      for (let i = 0; i < m; i++) {
        const d = pool[rng.int(pool.length)];
        gone.set(d, i * 32);
        const k = d.toHex();
        if (!seen.has(k) && model.has(k)) present++;
        seen.add(k);
        model.delete(k);
      }
      assert.deepEqual(index.removeBatch(gone), present);
      checkAll(index, model, pool);
    }
    index.clear();
    assert.deepEqual(index.size, 0);
    checkAll(index, new Map(), pool);
  }),
);

Deno.test(
  "BlockIndex: locations up to 2^53 - 1 round-trip; bad arguments throw",
  seeded(1, (seed) => {
    const index = new BlockIndex();
    const d = new Prng(seed).bytes(32);
    for (const loc of [0, 1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER]) {
      index.insert(d, loc);
      assert.deepEqual(index.lookup(d), loc);
    }
    assert.deepEqual(index.size, 1);
    assert.throws(() => index.insert(d, -1), TypeError);
    assert.throws(() => index.insert(d, 1.5), TypeError);
    assert.throws(() => index.insert(d, 2 ** 53), TypeError);
    assert.throws(() => index.insert(d.subarray(1), 0), TypeError);
    assert.throws(() => index.lookup(new Uint8Array(31)), TypeError);
    assert.throws(() => index.insertBatch(new Uint8Array(64), new Float64Array(1)), TypeError);
    assert.throws(() => index.insertBatch(new Uint8Array(32), new Float64Array([NaN])), TypeError);
    assert.throws(() => index.lookupBatch(new Uint8Array(64), new Float64Array(1)), TypeError);
    assert.deepEqual(index.lookup(d), Number.MAX_SAFE_INTEGER, "failed calls changed nothing");
  }),
);

Deno.test(
  "BlockIndex: instances are independent",
  seeded(2, (seed) => {
    const rng = new Prng(seed);
    const a = new BlockIndex();
    const b = new BlockIndex();
    const keys = digestPool(rng, 3000); // grows a, not b
    keys.forEach((k, i) => a.insert(k, i));
    b.insert(keys[0], 999);
    assert.deepEqual(a.size, 3000);
    assert.deepEqual(b.size, 1);
    assert.deepEqual(a.lookup(keys[0]), 0);
    assert.deepEqual(b.lookup(keys[0]), 999);
    assert.deepEqual(b.lookup(keys[1]), -1);
  }),
);

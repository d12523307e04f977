/**
 * The object store (ObjectStore) against a model, in process, on real files:
 * random whole PUTs, ranged writes, deletes, CPs and close+reopen (recovery by
 * log replay), every object and listing compared after every step; then the
 * edge cases: a body that breaks off midway, a body whose length is not the
 * announced one, Range reads of every kind of layer, reads while a CP
 * commits, and read streams that outlive later writes and CPs.
 */
import { concatBytes } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import { type ErrorCode, RefsyncError } from "../../../src/errors/mod.ts";
import { verifyVolume } from "../../../src/storage/verify.ts";
import {
  assertBytes,
  blake3Hex,
  bytesStream,
  drain,
  failingStream,
  Prng,
  seeded,
  testSeed,
  withSeed,
  withTempDir,
} from "../helpers.ts";
import {
  beforeCommit,
  KEYS,
  objectBytes,
  putSize,
  STORE_OPTS,
  StoreModel,
} from "../store_model.ts";

const MiB = 1 << 20;

function isCode(code: ErrorCode): (e: unknown) => boolean {
  return (e: unknown) => e instanceof RefsyncError && e.code === code;
}

Deno.test("store: seeded model test of PUTs, ranged writes, deletes, CPs and reopen", async () => {
  const seed = testSeed(0x570e);
  await withSeed(seed, "store model", () =>
    withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      const counts = { put: 0, ranged: 0, delete: 0, cp: 0, reopen: 0, multi: 0 };
      try {
        for (let step = 0; step < 90; step++) {
          const total = [...m.objects.values()].reduce((n, e) => n + e.bytes.length, 0);
          const keys = [...m.objects.keys()];
          const r = rng.float();
          let what: string;
          if (r < 0.28 && total < 12 * MiB) {
            const key = rng.pick(KEYS);
            const size = putSize(rng);
            const chunk = rng.pick([1000, 4096, 65536, MiB + 1]);
            what = `PUT ${key} ${size}B chunks of ${chunk}`;
            await m.put(key, objectBytes(rng, size), chunk);
            counts.put++;
            if (size > MiB) counts.multi++;
          } else if (r < 0.58 && total < 12 * MiB) {
            const key = keys.length && rng.chance(0.75) ? rng.pick(keys) : rng.pick(KEYS);
            const size = m.bytes(key)?.length ?? 0;
            const o = rng.float();
            let offset = o < 0.4
              ? rng.int(size + 1)
              : o < 0.6
              ? Math.floor(rng.int(size + 1) / 4096) * 4096
              : o < 0.85
              ? size + rng.int(3 * 4096)
              : size + rng.int(MiB);
            const l = rng.float();
            let length = l < 0.5
              ? rng.range(1, 5000)
              : l < 0.75
              ? 4096 * rng.range(1, 8)
              : l < 0.9
              ? rng.range(MiB - 100, MiB + 3 * 4096)
              : rng.range(1, 1536 << 10);
            offset = Math.min(offset, 4 * MiB - 1);
            length = Math.min(length, 4 * MiB - offset);
            const announce = rng.chance(0.8);
            const chunk = rng.pick([777, 4096, 65536, MiB]);
            what = `write ${key} @${offset} +${length}${announce ? "" : " (no length)"}`;
            await m.writeAt(key, offset, objectBytes(rng, length), { chunk, announce });
            counts.ranged++;
            if (length > MiB) counts.multi++;
          } else if (r < 0.7) {
            const key = keys.length && rng.chance(0.8) ? rng.pick(keys) : rng.pick(KEYS);
            what = `DELETE ${key}`;
            await m.del(key);
            counts.delete++;
          } else if (r < 0.88) {
            what = "CP";
            const before = m.store.digest();
            const dirty = m.store.dirtyBytes;
            const res = await m.store.checkpoint();
            const after = m.store.digest();
            if (res === null) {
              assert.deepEqual(after, before, "a CP with nothing dirty changes nothing");
            } else {
              assert.equal(after.cp, before.cp + 1);
              assert.notEqual(after.digest, before.digest);
              assert.equal(m.store.dirtyBytes, 0);
              counts.cp++;
            }
            void dirty;
          } else {
            what = "close + reopen";
            const before = m.store.digest();
            await m.reopen();
            assert.deepEqual(m.store.digest(), before, "reopen keeps the committed CP");
            counts.reopen++;
          }
          await m.verify(rng, `seed ${seed} step ${step} after ${what}`, { ranges: 1, lists: 2 });
        }
        await m.store.checkpoint();
        const report = await verifyVolume(dir);
        assert.deepEqual(report.errors, []);
        assert.equal(report.objects, m.objects.size);
        assert.equal(report.digest, m.store.digest().digest);
        await m.reopen();
        await m.verify(rng, "final reopen");
        // Every kind of step ran.
        for (const [k, n] of Object.entries(counts)) assert.ok(n >= 3, `only ${n} ${k} steps`);
      } finally {
        await m.close();
      }
    }));
});

Deno.test(
  "store: ranged writes that grow an object past its block map's depth commit",
  seeded(0x5714, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        await m.put("inline", rng.bytes(5000)); // inline map (<= 8 blocks)
        await m.put("one-level", rng.bytes(100_000)); // a one-level map (<= 511 blocks)
        await m.store.checkpoint();
        await m.writeAt("inline", 40_000, rng.bytes(10)); // -> one level
        await m.writeAt("one-level", 2_100_000, rng.bytes(10)); // block 512 -> two levels
        assert.ok(await m.store.checkpoint(), "the CP commits");
        await m.verify(rng, "after the CP");
        await m.writeAt("inline", 3 * MiB, rng.bytes(4096)); // one level -> two, dirty only
        await m.store.checkpoint();
        await m.reopen();
        await m.verify(rng, "after reopen");
        assert.deepEqual((await verifyVolume(dir)).errors, []);
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "store: a multi-record PUT whose body breaks off is never half applied",
  seeded(0x570f, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        await m.put("committed", rng.bytes(1536 << 10));
        await m.put("ranged", rng.bytes(300_000));
        await m.store.checkpoint();
        await m.put("dirty", rng.bytes(2 * MiB + 5));
        const boom = () => new Error("client went away");
        const big = rng.bytes(3 * MiB);
        // Whole PUTs over a committed object, a dirty one, and a new key.
        for (const key of ["committed", "dirty", "new"]) {
          for (const failAfter of [MiB + 1, 2 * MiB + 4096, 3 * MiB - 1]) {
            await assert.rejects(
              () =>
                m.store.write(key, failingStream(big, failAfter, boom()), {
                  replace: true,
                  offset: 0,
                }),
              /client went away/,
            );
            await m.verify(rng, `after a broken PUT of ${key} at ${failAfter}`);
          }
        }
        // A ranged multi-record write that breaks off.
        await assert.rejects(
          () =>
            m.store.write("ranged", failingStream(big, 2 * MiB, boom()), {
              replace: false,
              offset: 1000,
              length: 3 * MiB,
            }),
          /client went away/,
        );
        // A broken PUT that waits midway while other writes and a CP go on: the
        // CP must not cover its records, and replay must not apply them.
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let sent = 0;
        const slow = new ReadableStream<Uint8Array>({
          async pull(c) {
            if (sent >= MiB + 8192) {
              await gate;
              c.error(boom());
              return;
            }
            c.enqueue(big.slice(sent, sent + 8192));
            sent += 8192;
          },
        }, { highWaterMark: 0 });
        const broken = m.store.write("committed", slow, { replace: true, offset: 0 });
        broken.catch(() => {});
        while (sent < MiB + 8192) await new Promise((r) => setTimeout(r, 1));
        await m.put("other", rng.bytes(5000));
        await m.store.checkpoint();
        release();
        await assert.rejects(() => broken, /client went away/);
        await m.verify(rng, "after the interleaved broken PUT");
        // Recovery replays the log above the CP: the open transactions stay out.
        await m.reopen();
        await m.verify(rng, "after reopen");
        await m.store.checkpoint();
        await m.reopen();
        await m.verify(rng, "after CP + reopen");
        assert.deepEqual((await verifyVolume(dir)).errors, []);
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "store: a body whose length is not the announced one -> 400, nothing applied",
  seeded(0x5710, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        await m.put("x", rng.bytes(10_000));
        await m.store.checkpoint();
        await m.writeAt("x", 20_000, rng.bytes(100)); // dirty, over the committed record
        const cases: Array<[string, number, number, number]> = [
          // key, offset, body bytes, announced length
          ["x", 0, 100, 200],
          ["x", 50, 300, 200],
          ["x", 0, 0, 1],
          ["y", 0, 100, 99],
          ["x", 4096, MiB + 4096, MiB + 10], // too long: refused at the second record
          ["x", 4096, MiB + 4096, 2 * MiB], // too short: refused at the last record
          ["y", 0, 2 * MiB + 1, 2 * MiB],
        ];
        for (const [key, offset, n, length] of cases) {
          const ctx = `${key}@${offset} body ${n} announced ${length}`;
          await assert.rejects(
            () =>
              m.store.write(key, bytesStream(rng.bytes(n), 64 << 10), {
                replace: false,
                offset,
                length,
              }),
            (e: unknown) => {
              assert.ok(e instanceof RefsyncError, ctx);
              assert.equal(e.code, "bad_range");
              assert.match(e.message, /Content-Range announced/);
              return true;
            },
          );
          await m.verify(rng, ctx, { lists: 1 });
        }
        // Beyond --max-object-bytes: too_large, nothing applied.
        await assert.rejects(
          () =>
            m.store.write("x", bytesStream(new Uint8Array(10)), {
              replace: false,
              offset: STORE_OPTS.maxObjectBytes - 5,
              length: 10,
            }),
          isCode("too_large"),
        );
        await assert.rejects(
          () =>
            m.store.write("y", bytesStream(new Uint8Array(STORE_OPTS.maxObjectBytes + 1), MiB), {
              replace: true,
              offset: 0,
            }),
          isCode("too_large"),
        );
        // Bad keys: bad_key.
        for (const key of ["", "a\0b", "x".repeat(1025), "\ud800"]) {
          await assert.rejects(
            () => m.store.write(key, bytesStream(new Uint8Array(1)), { replace: true, offset: 0 }),
            isCode("bad_key"),
          );
        }
        await m.verify(rng, "after the refusals");
        await m.reopen();
        await m.verify(rng, "after reopen");
        // The right length is accepted.
        await m.writeAt("y", 7, rng.bytes(MiB + 3));
        await m.verify(rng, "after a good write");
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "store: Range reads of every kind of layer, before and after CP and reopen",
  seeded(0x5711, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        // Committed state (CP 1).
        await m.put("committed", rng.bytes(3 * 4096 + 100));
        await m.put("dirty-over-committed", rng.bytes(20_000));
        await m.put("replaced", rng.bytes(20_000));
        await m.put("deleted-rewritten", rng.bytes(20_000));
        await m.put("deleted-put", rng.bytes(9000));
        const zeros = rng.bytes(5 * 4096);
        zeros.fill(0, 4096, 3 * 4096); // two all-zero blocks become holes
        await m.put("zero-blocks", zeros);
        await m.put("big-ranged", rng.bytes(3 * MiB));
        await m.store.checkpoint();
        // Dirty layers over it.
        await m.writeAt("dirty-over-committed", 100, rng.bytes(50));
        await m.writeAt("dirty-over-committed", 4090, rng.bytes(110)); // across a block boundary
        await m.writeAt("dirty-over-committed", 19_990, rng.bytes(5010)); // extends it
        await m.writeAt("dirty-over-committed", 30_000, rng.bytes(7)); // leaves a hole
        await m.put("replaced", rng.bytes(5000)); // smaller: the old tail must not show
        await m.del("deleted-rewritten");
        await m.writeAt("deleted-rewritten", 9000, rng.bytes(100)); // zeros before, not old bytes
        await m.del("deleted-put");
        await m.put("deleted-put", rng.bytes(4096));
        await m.put("dirty-over-dirty", rng.bytes(12_000));
        await m.writeAt("dirty-over-dirty", 4000, rng.bytes(200));
        await m.writeAt("hole", 3 * MiB, rng.bytes(10)); // a new object: 3 MiB of zeros first
        await m.writeAt("zero-blocks", 4096 + 10, rng.bytes(5)); // into a hole of the committed map
        await m.writeAt("big-ranged", MiB - 10, rng.bytes(MiB + 20)); // multi-record ranged
        assert.equal(m.store.stat("replaced")?.size, 5000);
        assert.throws(() => m.store.read("replaced", 0, 5001), isCode("range_not_satisfiable"));
        assert.throws(() => m.store.read("replaced", 10, 9), isCode("range_not_satisfiable"));
        assert.throws(() => m.store.read("replaced", -1, 9), isCode("range_not_satisfiable"));
        assert.deepEqual(await drain(m.store.read("replaced", 5000, 5000)), new Uint8Array(0));

        const ranges = (size: number): Array<[number, number]> => {
          const out: Array<[number, number]> = [[0, size], [0, Math.min(1, size)], [
            Math.max(0, size - 1),
            size,
          ]];
          for (const b of [4095, 4096, 4097, 8191, 9000, MiB - 1, MiB, MiB + 1]) {
            if (b < size) out.push([b, Math.min(size, b + 1)], [b - 1 < 0 ? 0 : b - 1, size]);
          }
          for (let i = 0; i < 6; i++) {
            const s = rng.int(size + 1);
            out.push([s, rng.range(s, size)]);
          }
          return out;
        };
        const checkAll = async (ctx: string) => {
          for (const [key, { bytes }] of m.objects) {
            for (const [s, e] of ranges(bytes.length)) await m.checkRange(key, s, e, ctx);
          }
          await m.verify(rng, ctx);
        };
        await checkAll("dirty layers over CP 1");
        await m.reopen(); // replay rebuilds the same layers
        await checkAll("after reopen (replay)");
        await m.store.checkpoint();
        await checkAll("after CP 2");
        await m.reopen();
        await checkAll("after CP 2 + reopen");
        const report = await verifyVolume(dir);
        assert.deepEqual(report.errors, []);
        // The all-zero blocks are holes: fewer blocks than the bytes suggest.
        assert.ok(report.blocks > 0);
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "store: reads and HEADs while a CP commits see the right bytes and ETags",
  seeded(0x5712, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        await m.put("k", rng.bytes(8192));
        await m.put("m", rng.bytes(100_000));
        await m.put("gone", rng.bytes(5000));
        await m.store.checkpoint();
        // Frozen by the next CP: ranged writes (bytes around them come from the
        // committed blocks), a replace and a delete.
        await m.writeAt("k", 100, rng.bytes(10));
        await m.writeAt("m", 50_000, rng.bytes(70_000));
        await m.put("new", rng.bytes(3000));
        await m.del("gone");
        let calls = 0;
        const unhook = beforeCommit(m.store, async () => {
          calls++;
          // The catalog already points at the new tree; none of it is on disk yet.
          await m.verify(rng, `during CP commit ${calls}`, { lists: 2 });
          // A write during the CP lands in the new active layer, over the frozen one.
          await m.writeAt("k", 5000, rng.bytes(1));
          await m.verify(rng, `during CP commit ${calls}, after a write`, { lists: 1 });
        });
        try {
          await m.store.checkpoint();
          await m.verify(rng, "after the hooked CP");
          await m.store.checkpoint();
        } finally {
          unhook();
        }
        assert.equal(calls, 2);
        await m.verify(rng, "after the next CP");
        const report = await verifyVolume(dir);
        assert.deepEqual(
          report.errors,
          [],
          "a wrong ETag cached during a CP must not be committed",
        );
        await m.reopen();
        await m.verify(rng, "after reopen");

        // Not hooked: reads interleaved with a CP of many objects (it yields between objects).
        for (let i = 0; i < 12; i++) await m.writeAt(`a/${i}`, rng.int(9000), rng.bytes(9000));
        await m.store.checkpoint();
        for (let i = 0; i < 12; i++) await m.writeAt(`a/${i}`, rng.int(9000), rng.bytes(300));
        let done = false;
        const cp = m.store.checkpoint().finally(() => (done = true));
        let rounds = 0;
        while (!done && rounds < 200) {
          rounds++;
          for (let i = 0; i < 12; i += 3) {
            const key = `a/${i}`;
            const { bytes, etag } = m.objects.get(key)!;
            assert.equal(m.store.stat(key)?.etag, etag, `during an unhooked CP: ${key}`);
            await m.checkRange(key, 0, bytes.length, "during an unhooked CP");
          }
          await new Promise((r) => setTimeout(r, 0));
        }
        await cp;
        await m.verify(rng, "after the unhooked CP");
        assert.deepEqual((await verifyVolume(dir)).errors, []);
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "store: an open read stream keeps its snapshot through later writes and CPs",
  seeded(0x5713, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        const old = rng.bytes(3 * MiB + 77);
        await m.put("big", old);
        await m.store.checkpoint();
        await m.writeAt("big", MiB + 5, rng.bytes(4096)); // a dirty layer in the snapshot too
        const snapshot = m.bytes("big")!.slice();
        const reader = m.store.read("big", 0, snapshot.length).getReader();
        const first = await reader.read();
        assert.ok(!first.done);
        const parts = [first.value];
        // Replace, delete, CP (frees the old blocks and log once no reader
        // remains), and new data that would reuse the freed blocks.
        await m.put("big", rng.bytes(2 * MiB));
        await m.store.checkpoint();
        await m.del("big");
        for (let i = 0; i < 4; i++) await m.put(`fill/${i}`, rng.bytes(MiB));
        await m.store.checkpoint();
        await m.store.checkpoint(true);
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          parts.push(r.value);
        }
        reader.releaseLock();
        const got = concatBytes(parts);
        assert.equal(got.length, snapshot.length);
        assertBytes(got, snapshot, "the stream opened before the changes");
        // Cancelling a stream releases its pin as well.
        const s = m.store.read("fill/0", 0, MiB);
        await s.cancel();
        await m.store.checkpoint(true);
        await m.verify(rng, "after the streams");
        assert.equal(blake3Hex(got), blake3Hex(snapshot));
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test("store: concurrent clients on their own keys while CPs run back to back", async () => {
  const seed = testSeed(0x5715);
  await withSeed(seed, "concurrent clients", () =>
    withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        let running = true;
        let cps = 0;
        const cpLoop = (async () => {
          while (running) {
            if (await m.store.checkpoint()) cps++;
            await new Promise((r) => setTimeout(r, 1));
          }
        })();
        const client = async (id: number, r: Prng) => {
          const key = `client/${id}`;
          for (let op = 0; op < 12; op++) {
            const size = m.bytes(key)?.length ?? 0;
            const x = r.float();
            if (x < 0.3) await m.put(key, objectBytes(r, r.pick([100, 20_000, MiB + 5000])));
            else if (x < 0.85) {
              const len = r.chance(0.2) ? MiB + r.int(9000) : r.range(1, 9000);
              await m.writeAt(key, Math.min(2 * MiB, r.int(size + 5000)), r.bytes(len));
            } else await m.del(key);
            if (m.objects.has(key)) {
              await m.checkRange(key, 0, m.bytes(key)!.length, `client ${id} op ${op}`);
              assert.equal(m.store.stat(key)?.etag, m.objects.get(key)!.etag);
            } else {
              assert.equal(m.store.stat(key), null);
            }
          }
        };
        try {
          await Promise.all([0, 1, 2, 3, 4].map((id) => client(id, rng.fork())));
        } finally {
          running = false;
          await cpLoop;
        }
        assert.ok(cps >= 2, `only ${cps} CPs ran during the writes`);
        await m.verify(rng, "after the clients");
        await m.store.checkpoint();
        assert.deepEqual((await verifyVolume(dir)).errors, []);
        await m.reopen();
        await m.verify(rng, "after reopen");
      } finally {
        await m.close();
      }
    }));
});

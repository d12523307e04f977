/**
 * End to end with real processes: a destination and a source (two
 * `deno run src/main.ts` processes on 127.0.0.1, port 0), a seeded workload in
 * phases, each followed by `POST /v1/admin/cp` and a check that
 *
 * - both `GET /v1/admin/digest` answers are equal and name the CP just taken;
 * - every object reads back with the same bytes from both sides, and both
 *   HEAD ETags equal the BLAKE3 of the expected bytes;
 * - every deleted key is 404 on both sides; both lists are equal.
 *
 * Phases: whole PUTs of edge sizes; one 64 MiB PUT (streamed, chunked, never
 * buffered by the test); ranged writes at unaligned offsets (extending, into
 * holes, creating); overwrites (whole and ranged); deletes.
 *
 * A second test runs the same seeded workload on a `--cp-sync refs` pair and a
 * `--cp-sync full` pair: full sends every CP block as DATA, refs mostly as
 * LOG_REF, and both count the same number of blocks.
 *
 * Replay a failure with `REFSYNC_SEED=<seed> deno test -A tests/mirror/e2e.test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "../support/appliance.ts";
import { etagHex } from "../support/blake3.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  callJson,
  type Pair,
  putRandomObject,
  spawnPair,
  statsOf,
  totalBlocks,
  verifySides,
  type Wire,
  wireDelta,
} from "./pair.ts";
import { Model } from "../support/model.ts";

const KiB = 1024;
const MiB = 1024 * 1024;

interface PutJson {
  key: string;
  size: number;
  etag: string | null;
  lsn: number;
}

/** A whole PUT on the source and on `model`; checks the answer (201 created, 200 replaced). */
async function putWhole(
  base: string,
  model: Model,
  key: string,
  bytes: Uint8Array,
): Promise<PutJson> {
  const a = await callJson<PutJson>(objectUrl(base, key), {
    method: "PUT",
    body: bytes as BodyInit,
  });
  assert.equal(a.status, model.objects.has(key) ? 200 : 201, `PUT ${key}: ${a.text.slice(0, 300)}`);
  assert.equal(a.json.size, bytes.length, `PUT ${key}: size`);
  assert.equal(a.json.etag, etagHex(bytes), `PUT ${key}: etag`);
  model.put(key, bytes);
  return a.json;
}

async function putAt(
  base: string,
  model: Model,
  key: string,
  offset: number,
  bytes: Uint8Array,
): Promise<PutJson> {
  const a = await callJson<PutJson>(objectUrl(base, key), {
    method: "PUT",
    body: bytes as BodyInit,
    headers: { "Content-Range": `bytes ${offset}-${offset + bytes.length - 1}/*` },
  });
  assert.equal(
    a.status,
    model.objects.has(key) ? 200 : 201,
    `ranged PUT ${key} @${offset}+${bytes.length}: ${a.text.slice(0, 300)}`,
  );
  return a.json;
}

async function del(base: string, key: string): Promise<void> {
  const a = await call(objectUrl(base, key), { method: "DELETE" });
  assert.equal(a.status, 204, `DELETE ${key}: ${a.status} ${a.text}`);
}

/** A ranged write on `model` and on the source; checks the answered size. */
async function rangedWrite(
  base: string,
  model: Model,
  key: string,
  offset: number,
  bytes: Uint8Array,
): Promise<void> {
  const json = await putAt(base, model, key, offset, bytes);
  model.write(key, offset, bytes);
  assert.equal(json.size, model.bytes(key)!.length, `ranged PUT ${key} @${offset}: object size`);
}

/** A length for a ranged write: mostly small, sometimes one byte, sometimes > 1 MiB (a transaction). */
function rangedLength(rng: Prng): number {
  const r = rng.float();
  if (r < 0.1) return 1;
  if (r < 0.2) return MiB + rng.range(1, 40_000);
  if (r < 0.35) return rng.range(4 * KiB, 64 * KiB);
  return rng.range(2, 20_000);
}

/** Takes a CP and checks both sides: same CP and digest, same objects, same list. */
async function checkpointAndVerify(
  pair: Pair,
  model: Model,
  phase: string,
  previousCp: number,
): Promise<number> {
  const cp = await adminCp(pair.src);
  assert.ok(cp.cp > previousCp, `${phase}: CP ${cp.cp} after CP ${previousCp}`);
  const d = await assertSameDigest(pair.src, pair.dst, phase);
  assert.equal(d.cp, cp.cp, `${phase}: committed CP`);
  assert.equal(d.digest, cp.digest, `${phase}: digest answered by POST /v1/admin/cp`);
  await verifySides(model, { source: pair.src, destination: pair.dst }, phase);
  return cp.cp;
}

Deno.test("mirror e2e: every phase leaves both processes with the same CP, bytes, ETags and list", async () => {
  const seed = testSeed(0x3e2e_0001);
  await withSeed(seed, "mirror-e2e", () =>
    withTempDir("refsync-mirror-e2e-", async (tmp) => {
      const rng = new Prng(seed);
      // No timer CPs (each phase takes its own); the 16 MiB dirty trigger still fires in phase 2.
      const pair = await spawnPair(tmp, {
        sourceArgs: ["--cp-interval", "0", "--cp-dirty-bytes", "16MiB"],
      });
      const timings: Record<string, number> = {};
      const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
        const t0 = performance.now();
        try {
          return await fn();
        } finally {
          timings[name] = Math.round(performance.now() - t0);
        }
      };
      try {
        const { src, dst } = pair;
        const model = new Model();
        let cp = 0;

        // Phase 1: whole PUTs of edge sizes.
        await timed("1 sizes", async () => {
          const sizes = [0, 1, 4095, 4096, 4097, MiB, MiB + 1, 5 * MiB + 123];
          for (const size of sizes) {
            const key = `sizes/${String(size).padStart(8, "0")}`;
            const bytes = rng.bytes(size);
            await putWhole(src.url, model, key, bytes);
          }
          // Keys that need percent-encoding.
          for (const key of ["odd keys/ünïcødé κλειδί 🙂", "odd keys/a%2Fb?c#d", "odd keys/ "]) {
            const bytes = rng.bytes(rng.range(1, 9000));
            await putWhole(src.url, model, key, bytes);
          }
          cp = await checkpointAndVerify(pair, model, "phase 1 (sizes)", cp);
        });

        // Phase 2: one 64 MiB PUT, streamed (chunked), hashed while it is generated.
        await timed("2 64MiB", async () => {
          const size = 64 * MiB;
          const before = (await statsOf(src)).wire;
          const tPut = performance.now();
          const put = await putRandomObject(src.url, model, "big/64MiB", rng.u32(), size, 120_000);
          assert.equal(put.status, 201, `PUT big/64MiB: ${put.status} ${put.text}`);
          const json = JSON.parse(put.text) as PutJson;
          assert.equal(json.size, size);
          assert.equal(json.etag, put.etag, "PUT big/64MiB: etag");
          timings["2 64MiB PUT only"] = Math.round(performance.now() - tPut);
          cp = await checkpointAndVerify(pair, model, "phase 2 (64 MiB)", cp);
          const d = wireDelta(before, (await statsOf(src)).wire);
          const blocks = size / 4096;
          // Refs mode: the 64 MiB travel once (as log), the CP sends references.
          assert.ok(
            d.logBytesRaw >= size,
            `phase 2: ${d.logBytesRaw} log bytes for a ${size}-byte PUT`,
          );
          assert.ok(
            d.cpBlocks.logRef >= blocks * 0.99,
            `phase 2: only ${d.cpBlocks.logRef} of ${blocks} blocks as LOG_REF: ${
              JSON.stringify(d)
            }`,
          );
          assert.ok(
            d.cpBlocks.data <= blocks * 0.01,
            `phase 2: ${d.cpBlocks.data} DATA blocks for ${blocks} logged blocks: ${
              JSON.stringify(d)
            }`,
          );
          assert.ok(
            d.cpSyncBytes < size / 100,
            `phase 2: CP sync of ${d.cpSyncBytes} bytes for a ${size}-byte object`,
          );
        });

        // Phase 3: ranged writes at random unaligned offsets.
        await timed("3 ranged", async () => {
          const keys = () => [...model.objects.keys()].filter((k) => model.bytes(k) !== null);
          for (let i = 0; i < 30; i++) {
            const key = rng.pick(keys());
            const size = model.bytes(key)!.length;
            const offset = rng.chance(0.3) ? rng.range(size, size + 100_000) : rng.int(size + 1);
            await rangedWrite(src.url, model, key, offset, rng.bytes(rangedLength(rng)));
          }
          // A hole: extend far past the end, then write into the hole, unaligned.
          const holed = "sizes/00004097";
          await rangedWrite(src.url, model, holed, 3 * MiB + 17, rng.bytes(5000));
          await rangedWrite(src.url, model, holed, MiB + 4093, rng.bytes(9));
          await rangedWrite(src.url, model, holed, 2 * MiB - 3, rng.bytes(8200));
          // Ranged writes that create objects (a leading hole), one spanning records.
          await rangedWrite(src.url, model, "ranged/new-a", 12_345, rng.bytes(777));
          await rangedWrite(src.url, model, "ranged/new-b", 0, rng.bytes(4096));
          await rangedWrite(src.url, model, "ranged/new-c", 8191, rng.bytes(MiB + 2));
          // Ranged write into a 0-byte object.
          await rangedWrite(src.url, model, "sizes/00000000", 1, rng.bytes(1));
          cp = await checkpointAndVerify(pair, model, "phase 3 (ranged)", cp);
        });

        // Phase 4: overwrites, whole and ranged, several on one key within one CP.
        await timed("4 overwrite", async () => {
          const shrink = rng.bytes(10_000);
          await putWhole(src.url, model, `sizes/${String(5 * MiB + 123).padStart(8, "0")}`, shrink);
          const grow = rng.bytes(2 * MiB + 5);
          await putWhole(src.url, model, "sizes/00000001", grow);
          for (let round = 0; round < 3; round++) {
            const again = rng.bytes(rng.range(100, 300_000));
            await putWhole(src.url, model, "sizes/00004096", again);
            const at = rng.int(again.length);
            await rangedWrite(src.url, model, "sizes/00004096", at, rng.bytes(rng.range(1, 9000)));
          }
          const keys = [...model.objects.keys()].filter((k) => model.bytes(k) !== null);
          for (let i = 0; i < 15; i++) {
            const key = rng.pick(keys);
            const size = model.bytes(key)!.length;
            if (size === 0) continue;
            const offset = rng.int(size);
            const length = Math.max(1, Math.min(size - offset, rangedLength(rng)));
            await rangedWrite(src.url, model, key, offset, rng.bytes(length));
          }
          cp = await checkpointAndVerify(pair, model, "phase 4 (overwrites)", cp);
        });

        // Phase 5: deletes (the 64 MiB object too: a CP that releases many blocks), re-create one.
        await timed("5 delete", async () => {
          for (const key of ["big/64MiB", "sizes/00000000", "ranged/new-a", "odd keys/ "]) {
            await del(src.url, key);
            model.delete(key);
          }
          const missing = await call(objectUrl(src.url, "no/such/key"), { method: "DELETE" });
          assert.equal(missing.status, 404, `DELETE of a missing key: ${missing.status}`);
          const back = rng.bytes(4097);
          await putWhole(src.url, model, "ranged/new-a", back);
          cp = await checkpointAndVerify(pair, model, "phase 5 (deletes)", cp);
        });

        // Both sides counted the same replication traffic.
        const s = (await statsOf(src)).wire;
        const d = (await statsOf(dst)).wire;
        assert.deepEqual(
          d.cpBlocks,
          s.cpBlocks,
          "CP blocks sent (source) and applied (destination)",
        );
        assert.equal(d.cpSyncBytes, s.cpSyncBytes, "CP sync bytes, source vs destination");
        assert.equal(d.logBytes, s.logBytes, "log bytes, source vs destination");
        console.log(
          `mirror e2e: seed=${seed} cp=${cp} phases(ms)=${JSON.stringify(timings)} wire=${
            JSON.stringify(s)
          }`,
        );
      } finally {
        await pair.stop();
      }
    }));
});

/** A deterministic workload (same seed: same requests), with two CPs. Returns the model. */
async function sameWorkload(seed: number, pair: Pair): Promise<Model> {
  const rng = new Prng(seed);
  const model = new Model();
  const base = pair.src.url;
  for (let i = 0; i < 6; i++) {
    const bytes = rng.bytes(rng.range(MiB, 3 * MiB));
    await putWhole(base, model, `obj/${i}`, bytes);
  }
  const small = rng.bytes(100);
  await putWhole(base, model, "obj/small", small);
  await adminCp(pair.src);
  for (let i = 0; i < 20; i++) {
    const key = `obj/${rng.int(6)}`;
    const size = model.bytes(key)!.length;
    await rangedWrite(base, model, key, rng.int(size + 5000), rng.bytes(rng.range(1, 30_000)));
  }
  const fresh = rng.bytes(2 * MiB + 999);
  await putWhole(base, model, "obj/2", fresh);
  await del(base, "obj/5");
  model.delete("obj/5");
  await adminCp(pair.src);
  return model;
}

Deno.test("mirror e2e: --cp-sync full sends every block as DATA, refs mostly LOG_REF", async () => {
  const seed = testSeed(0x3e2e_0002);
  await withSeed(seed, "mirror-e2e-full", () =>
    withTempDir("refsync-mirror-full-", async (tmp) => {
      const args = ["--cp-interval", "0", "--cp-dirty-bytes", "1GiB"];
      const refs = await spawnPair(`${tmp}/refs`, { sourceArgs: [...args, "--cp-sync", "refs"] });
      let full: Pair | null = null;
      try {
        full = await spawnPair(`${tmp}/full`, { sourceArgs: [...args, "--cp-sync", "full"] });
        const wires: Record<string, Wire> = {};
        for (const [name, pair] of [["refs", refs], ["full", full]] as const) {
          const model = await sameWorkload(seed, pair);
          await assertSameDigest(pair.src, pair.dst, name);
          await verifySides(model, { source: pair.src, destination: pair.dst }, name);
          wires[name] = (await statsOf(pair.src)).wire;
          const destWire = (await statsOf(pair.dst)).wire;
          assert.deepEqual(
            destWire.cpBlocks,
            wires[name].cpBlocks,
            `${name}: blocks sent vs applied`,
          );
          const mirror = (await statsOf(pair.src)).mirror as { mode?: string };
          assert.equal(mirror?.mode, name, `${name}: stats.mirror.mode`);
        }
        const r = wires.refs;
        const f = wires.full;
        console.log(`cp-sync refs: ${JSON.stringify(r)}\ncp-sync full: ${JSON.stringify(f)}`);
        // Full: every block is DATA, 4 KiB each on the wire.
        assert.ok(f.cpBlocks.data > 0, "full: DATA blocks");
        assert.deepEqual(
          { ...f.cpBlocks, data: 0 },
          { data: 0, logRef: 0, patch: 0, copy: 0, zero: 0, diff: 0 },
          `full: only DATA records: ${JSON.stringify(f.cpBlocks)}`,
        );
        assert.ok(
          f.cpSyncBytesRaw >= f.cpBlocks.data * 4096,
          "full: each DATA block carries 4 KiB",
        );
        // The same workload writes the same blocks: full counts every one of them.
        assert.equal(
          f.cpBlocks.data,
          totalBlocks(r),
          `full DATA blocks vs all blocks of the refs run: ${JSON.stringify(r.cpBlocks)}`,
        );
        // Refs: mostly LOG_REF; the CP sync is a small fraction of full's.
        assert.ok(
          r.cpBlocks.logRef >= 0.8 * totalBlocks(r),
          `refs: ${r.cpBlocks.logRef} LOG_REF of ${totalBlocks(r)} blocks`,
        );
        assert.ok(r.cpBlocks.data <= 0.1 * f.cpBlocks.data, `refs: ${r.cpBlocks.data} DATA blocks`);
        assert.ok(
          r.cpSyncBytes * 20 < f.cpSyncBytes,
          `refs CP sync ${r.cpSyncBytes} B vs full ${f.cpSyncBytes} B`,
        );
        // Both forwarded the same log (every client byte once).
        assert.equal(r.logBytesRaw, f.logBytesRaw, "log bytes of the same workload");
      } finally {
        await full?.stop();
        await refs.stop();
      }
    }));
});

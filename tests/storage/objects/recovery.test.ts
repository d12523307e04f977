/**
 * Recovery of the object store in process: rounds of writes, a CP, more
 * writes, close WITHOUT a CP, reopen (best superblock + log replay), with the
 * volume digest changing only at CPs and `verifyVolume` clean after each one;
 * a CP torn before its superblock (its blocks written over free space that
 * the previous CP still names); free space full of junk; and CPs started by
 * the dirty threshold in the background.
 */
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import fs from "node:fs";
import { walkMap } from "../../../src/storage/blockmap/blockmap.ts";
import { Catalog } from "../../../src/storage/catalog/mod.ts";
import { decodeRecord } from "../../../src/storage/objects/record.ts";
import { verifyVolume } from "../../../src/storage/verify.ts";
import { Volume } from "../../../src/storage/volume/volume.ts";
import { etagHex, Prng, seeded, testSeed, withSeed, withTempDir } from "../helpers.ts";
import { beforeCommit, KEYS, objectBytes, STORE_OPTS, StoreModel } from "../store_model.ts";

const MiB = 1 << 20;

/** A few random writes: PUTs, ranged writes (some multi-record), deletes. */
async function randomOps(m: StoreModel, rng: Prng, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const keys = [...m.objects.keys()];
    const r = rng.float();
    if (r < 0.4) {
      const size = rng.pick([
        0,
        rng.range(1, 9000),
        4096 * rng.range(1, 20),
        rng.range(MiB, 2 * MiB),
      ]);
      await m.put(rng.pick(KEYS), objectBytes(rng, size));
    } else if (r < 0.8) {
      const key = keys.length && rng.chance(0.7) ? rng.pick(keys) : rng.pick(KEYS);
      const size = m.bytes(key)?.length ?? 0;
      const offset = Math.min(3 * MiB, rng.int(size + 10_000));
      const length = rng.chance(0.15) ? rng.range(MiB, MiB + 9000) : rng.range(1, 12_000);
      await m.writeAt(key, offset, objectBytes(rng, length));
    } else if (keys.length) {
      await m.del(rng.pick(keys));
    }
  }
}

/** Asserts the committed volume is sound and is the CP the store reports. */
async function assertVerified(m: StoreModel, dir: string, ctx: string): Promise<void> {
  const report = await verifyVolume(dir);
  assert.deepEqual(report.errors, [], `${ctx}: verifyVolume`);
  assert.ok(report.ok, ctx);
  assert.deepEqual({ cp: report.cp, digest: report.digest }, m.store.digest(), ctx);
}

/** Blocks reachable from the committed tree of the volume at `path`. */
async function liveBlocks(path: string): Promise<{ live: Set<number>; blockCount: number }> {
  const vol = await Volume.open(path);
  try {
    const live = new Set<number>([0, 1]);
    new Catalog(vol, vol.superblock.catalogRoot).walk(
      (node) => live.add(node.block),
      (_key, value) => walkMap(vol, decodeRecord(value).map, (p) => live.add(p.block)),
    );
    return { live, blockCount: vol.superblock.blockCount };
  } finally {
    vol.close();
  }
}

Deno.test("recovery: write, CP, write more, close without CP, reopen; several rounds", async () => {
  const seed = testSeed(0x4ec0);
  await withSeed(seed, "recovery rounds", () =>
    withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        let digest = m.store.digest();
        assert.equal(digest.cp, 0);
        for (let round = 0; round < 6; round++) {
          const ctx = `seed ${seed} round ${round}`;
          await randomOps(m, rng, rng.range(4, 8));
          assert.deepEqual(m.store.digest(), digest, `${ctx}: writes do not change the digest`);
          const res = await m.store.checkpoint();
          assert.ok(res, `${ctx}: something was dirty`);
          const next = m.store.digest();
          assert.equal(next.cp, digest.cp + 1, ctx);
          assert.notEqual(next.digest, digest.digest, `${ctx}: a CP changes the digest`);
          assert.equal(next.digest, res.superblock.volumeDigest.toHex(), ctx);
          assert.equal(res.previousDigest.toHex(), digest.digest, `${ctx}: the digest is a chain`);
          digest = next;
          await assertVerified(m, dir, `${ctx} after the CP`);
          assert.equal((await verifyVolume(dir)).objects, m.objects.size, ctx);
          assert.equal(await m.store.checkpoint(), null, `${ctx}: nothing dirty, no CP`);
          assert.deepEqual(m.store.digest(), digest, `${ctx}: an empty CP changes nothing`);

          await randomOps(m, rng, rng.range(3, 7));
          assert.deepEqual(m.store.digest(), digest, ctx);
          await m.reopen(); // close WITHOUT a CP
          assert.deepEqual(m.store.digest(), digest, `${ctx}: reopen keeps the committed CP`);
          await m.verify(rng, `${ctx} after reopen`, { lists: 2 });
          await assertVerified(m, dir, `${ctx} after reopen`);
          // A second reopen replays the same log to the same state.
          await m.reopen();
          await m.verify(rng, `${ctx} after a second reopen`, { lists: 1 });
        }
        await m.store.checkpoint();
        await assertVerified(m, dir, "final");
      } finally {
        await m.close();
      }
    }));
});

Deno.test("recovery: a CP torn before its superblock, over the previous CP's freed blocks", async () => {
  const seed = testSeed(0x4ec1);
  await withSeed(seed, "torn CP", () =>
    withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        // CP 1, then CP 2 rewrites the catalog root: CP 1's root is released and,
        // with no mirror to wait for, freed. The next CP allocates it first.
        await m.put("a", rng.bytes(100));
        await m.store.checkpoint();
        await m.put("b", rng.bytes(100));
        await m.store.checkpoint();
        for (let round = 0; round < 4; round++) {
          const ctx = `round ${round}`;
          await randomOps(m, rng, 5);
          await m.put(`c/${round}`, rng.bytes(64 * 1024));
          const committed = m.store.digest();
          let torn = 0;
          const unhook = beforeCommit(m.store, async (tx) => {
            await tx.flush(); // the CP's blocks reach the file...
            torn = tx.written.count;
            // Writes that arrive meanwhile land above the frozen layer; when the CP
            // fails, the frozen writes must go back underneath them.
            const frozenKey = `c/${round}`;
            await m.writeAt(frozenKey, rng.int(70_000), rng.bytes(rng.range(1, 9000)));
            await randomOps(m, rng, 3);
            throw new Error("power cut before the superblock"); // ...its superblock never does
          });
          try {
            await assert.rejects(() => m.store.checkpoint(), /power cut/);
          } finally {
            unhook();
          }
          assert.ok(torn > 0);
          assert.deepEqual(m.store.digest(), committed, `${ctx}: the torn CP is not committed`);
          // The store keeps serving everything (the frozen writes went back to the dirty layer).
          await m.verify(rng, `${ctx}: after the failed CP`, { lists: 1 });
          if (round % 2 === 1) {
            // In process: a later CP commits all of it.
            await m.put(`d/${round}`, rng.bytes(5000));
            assert.ok(await m.store.checkpoint());
            await assertVerified(m, dir, `${ctx}: after the next CP`);
          }
          // Restart after the crash: the best superblock plus the log.
          await m.reopen();
          await m.verify(rng, `${ctx}: after reopen`, { lists: 1 });
          await assertVerified(m, dir, `${ctx}: after reopen`);
          // Replay put the torn CP's writes back in the dirty layer (unless a CP took them).
          assert.equal(await m.store.checkpoint() !== null, round % 2 === 0, ctx);
          await assertVerified(m, dir, `${ctx}: CP after reopen`);
          await m.verify(rng, `${ctx}: CP after reopen`, { lists: 1 });
        }
      } finally {
        await m.close();
      }
    }));
});

Deno.test(
  "recovery: whatever free space holds, reopen recovers",
  seeded(0x4ec2, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        for (let cp = 0; cp < 4; cp++) {
          await randomOps(m, rng, 6);
          await m.store.checkpoint();
        }
        await randomOps(m, rng, 4); // in the log only
        await m.close();
        const path = `${dir}/volume.dat`;
        const { live, blockCount } = await liveBlocks(path);
        const fd = fs.openSync(path, "r+");
        let scribbled = 0;
        try {
          for (let b = 2; b < blockCount + 50; b++) {
            if (live.has(b)) continue;
            // Junk, and sometimes a convincing copy of a live block (a stale tree node).
            const junk = rng.chance(0.3) && live.size > 2
              ? fs.readFileSync(path).subarray(
                [...live][2] * BLOCK_SIZE,
                ([...live][2] + 1) * BLOCK_SIZE,
              )
              : rng.bytes(BLOCK_SIZE);
            fs.writeSync(fd, junk, 0, BLOCK_SIZE, b * BLOCK_SIZE);
            scribbled++;
          }
        } finally {
          fs.closeSync(fd);
        }
        assert.ok(scribbled > 50, "the previous CP's freed blocks were overwritten too");
        await m.open();
        await m.verify(rng, "after reopen over junk");
        await assertVerified(m, dir, "after reopen over junk");
        assert.ok(await m.store.checkpoint());
        await assertVerified(m, dir, "after a CP over junk");
        await m.reopen();
        await m.verify(rng, "after CP + reopen");
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "recovery: CPs started by the dirty threshold, close while one may run",
  seeded(0x4ec3, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir, { ...STORE_OPTS, cpDirtyBytes: 512 << 10 }).open();
      try {
        let last = m.store.digest();
        let changes = 0;
        for (let i = 0; i < 40; i++) {
          if (rng.chance(0.5)) await randomOps(m, rng, 1);
          else {await m.writeAt(
              rng.pick(KEYS),
              rng.int(MiB),
              rng.bytes(rng.range(200_000, 700_000)),
            );}
          const d = m.store.digest();
          if (d.cp !== last.cp) {
            assert.ok(d.cp > last.cp);
            assert.notEqual(d.digest, last.digest);
            changes++;
          } else {
            assert.equal(d.digest, last.digest, "the digest changes only with the CP number");
          }
          last = d;
          if (i % 10 === 9) {
            await m.reopen(); // close waits for a running CP
            assert.ok(m.store.digest().cp >= last.cp);
            last = m.store.digest();
            await m.verify(rng, `after reopen ${i}`, { lists: 1 });
            await assertVerified(m, dir, `after reopen ${i}`);
          }
        }
        assert.ok(changes >= 3, `only ${changes} automatic CPs`);
        await m.verify(rng, "end");
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "recovery: a multi-record write that spans CPs is replayed whole",
  seeded(0x4ec4, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const m = await new StoreModel(dir).open();
      try {
        await m.put("slow", rng.bytes(50_000));
        await m.store.checkpoint();
        for (const replace of [true, false]) {
          const data = rng.bytes(3 * MiB + 123);
          let sent = 0;
          let cpsDuring = 0;
          const body = new ReadableStream<Uint8Array>({
            async pull(c) {
              if (sent >= data.length) {
                c.close();
                return;
              }
              if (sent % MiB === 0 && sent > 0) {
                // Between records: other writes and CPs go on.
                await m.put(`other/${sent}`, rng.bytes(rng.range(1, 20_000)));
                if (await m.store.checkpoint()) cpsDuring++;
              }
              const n = Math.min(64 << 10, data.length - sent);
              c.enqueue(data.slice(sent, sent + n));
              sent += n;
            },
          }, { highWaterMark: 0 });
          const offset = replace ? 0 : 7000;
          await m.store.write("slow", body, { replace, offset });
          if (replace) {
            m.objects.set("slow", { bytes: data, etag: etagHex(data) });
          } else {
            const old = m.bytes("slow")!;
            const next = new Uint8Array(Math.max(old.length, offset + data.length));
            next.set(old);
            next.set(data, offset);
            m.objects.set("slow", { bytes: next, etag: etagHex(next) });
          }
          assert.equal(cpsDuring, 3, "a CP ran between each record of the transaction");
          await m.verify(rng, `replace=${replace}: after the write`);
          await m.reopen(); // the transaction's first records are below later CPs' writes
          await m.verify(rng, `replace=${replace}: after reopen`);
          await m.store.checkpoint();
          await assertVerified(m, dir, `replace=${replace}`);
          await m.reopen();
          await m.verify(rng, `replace=${replace}: after CP + reopen`);
        }
      } finally {
        await m.close();
      }
    });
  }),
);

/**
 * The catch-up applier against real stores: a baseline from a source store
 * into an empty destination store commits an exact image (equal digests, the
 * same bytes) with the superblock in the slot not holding the base; a stream
 * cut midway resumes after the durable progress, also across a reopen; a
 * CHECK of bytes the destination does not hold and a forged reference are
 * asked for as DATA (409 need), never committed; a block written twice is
 * the sender's fault (`conflict`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { applyCatchUp } from "../../src/edge-dest/cp-apply.ts";
import { catchUpParts, type CatchUpSource } from "../../src/edge-source/mirror/catch-up-sender.ts";
import { RefsyncError } from "../../src/errors/mod.ts";
import { type CpRecord, encodeRecord, readRecords } from "../../src/protocol/cp-sync/records.ts";
import { newWireStats } from "../../src/protocol/cp-sync/stats.ts";
import { walkBornAfter } from "../../src/storage/objects/catch-up-walk.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { decodeSuperblock, encodeSuperblock } from "../../src/storage/volume/superblock.ts";
import { bytesStream, drain, Prng, withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 30, maxObjectBytes: 1 << 30 };

/** A source store at CP 2 (even: CP n % 2 would be slot 0, the base's) with a few objects. */
async function sourceAt2(
  dir: string,
): Promise<{ store: ObjectStore; objects: Map<string, Uint8Array> }> {
  const store = await ObjectStore.open(dir, OPTS);
  const rng = new Prng(11);
  const objects = new Map<string, Uint8Array>();
  for (let cp = 1; cp <= 2; cp++) {
    for (let i = 0; i < 4; i++) {
      const bytes = rng.bytes(i === 0 ? 1_000 : rng.range(1_000_000, 2_000_000));
      objects.set(`k${cp}-${i}`, bytes);
      await store.write(`k${cp}-${i}`, bytesStream(bytes), { replace: true, offset: 0 });
    }
    await store.checkpoint();
  }
  return { store, objects };
}

function begin(dest: ObjectStore, src: ObjectStore, total: number) {
  const t = src.superblock;
  return dest.beginCatchUp({
    baseCp: dest.superblock.cp,
    targetCp: t.cp,
    targetDigest: t.volumeDigest.toHex(),
    lsnCovered: t.lsnCovered,
    volumeId: t.volumeId.toHex(),
    pairGeneration: t.pairGeneration,
    totalBytes: total,
  });
}

function source(
  src: ObjectStore,
  dest: ObjectStore,
  over: Partial<CatchUpSource> = {},
): CatchUpSource {
  const t = src.superblock;
  return {
    volume: src.volume,
    target: t,
    targetBytes: encodeSuperblock(t),
    baseCp: dest.superblock.cp,
    baseDigest: dest.superblock.volumeDigest,
    walk: walkBornAfter(src.volume, t.catalogRoot, dest.superblock.cp),
    resumeFrom: 0,
    checkThrough: 0,
    forceData: new Set(),
    mode: "refs",
    ...over,
  };
}

async function records(src: CatchUpSource): Promise<CpRecord[]> {
  const out: CpRecord[] = [];
  const parts = [...catchUpParts(src, () => {})];
  for await (const r of readRecords(ReadableStream.from(parts))) out.push(r);
  return out;
}

function stream(rs: CpRecord[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(rs.map(encodeRecord));
}

async function assertImage(dest: ObjectStore, src: ObjectStore, objects: Map<string, Uint8Array>) {
  assert.deepEqual(dest.digest(), src.digest());
  for (const [key, bytes] of objects) {
    assert.deepEqual(await drain(dest.read(key, 0, bytes.length)), bytes, key);
  }
}

Deno.test("catch-up apply: a baseline commits the exact image, into the slot not holding the base", async () => {
  await withTempDir(async (dir) => {
    const { store: src, objects } = await sourceAt2(`${dir}/s`);
    let dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
    try {
      const s = source(src, dest);
      begin(dest, src, s.walk.length * 4096);
      const wire = newWireStats();
      const parts = [...catchUpParts(s, () => {})];
      const result = await applyCatchUp(dest, ReadableStream.from(parts), wire);
      assert.equal(result.committed, true);
      assert.equal(dest.catchUp, null);
      await assertImage(dest, src, objects);
      // CP 2 went to slot 1: slot 0 still holds the base (CP 0).
      const file = await Deno.readFile(`${dir}/d/volume.dat`);
      assert.equal(decodeSuperblock(file.subarray(0, 4096))?.cp, 0);
      assert.equal(decodeSuperblock(file.subarray(4096, 8192))?.cp, 2);
      await dest.close();
      dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
      assert.equal(dest.catchUp, null);
      await assertImage(dest, src, objects);
    } finally {
      await dest.close();
      await src.close();
    }
  });
});

Deno.test("catch-up apply: a cut stream resumes after the durable progress, across a reopen", async () => {
  await withTempDir(async (dir) => {
    const { store: src, objects } = await sourceAt2(`${dir}/s`);
    let dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
    try {
      const all = await records(source(src, dest));
      assert.ok(all.length > 1600, `a walk of ${all.length} entries`);
      begin(dest, src, all.length * 4096);
      // The stream ends after 1500 records, before COMMIT: the source went away.
      await assert.rejects(
        () => applyCatchUp(dest, stream(all.slice(0, 1500)), newWireStats()),
        (e) => e instanceof RefsyncError && e.code === "bad_request",
      );
      const done = dest.catchUp!.blocksDone;
      assert.ok(done >= 1024 && done < 1500, `${done} entries durable`);
      await assert.rejects(
        () => dest.promote(),
        /holds no complete image: a baseline to CP 2 is \d+% done/,
      );
      await dest.close();
      dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
      assert.equal(dest.catchUp?.blocksDone, done);
      // Resuming beyond what is durable is refused; at it, the rest completes the image.
      const ahead = await records(source(src, dest, { resumeFrom: done + 1 }));
      await assert.rejects(
        () => applyCatchUp(dest, stream(ahead), newWireStats()),
        (e) => e instanceof RefsyncError && e.code === "conflict",
      );
      const rest = await records(source(src, dest, { resumeFrom: done }));
      assert.equal(rest.length, all.length - done);
      const result = await applyCatchUp(dest, stream(rest), newWireStats());
      assert.equal(result.committed, true);
      await assertImage(dest, src, objects);
    } finally {
      await dest.close();
      await src.close();
    }
  });
});

Deno.test("catch-up apply: CHECKs of bytes not held and a forged reference are asked for as DATA", async () => {
  await withTempDir(async (dir) => {
    const { store: src, objects } = await sourceAt2(`${dir}/s`);
    const dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
    try {
      const s = source(src, dest);
      begin(dest, src, s.walk.length * 4096);
      // As if an earlier catch-up had brought CP 1's blocks: this destination holds none.
      const checked = await records(source(src, dest, { checkThrough: 1 }));
      const checks = checked.filter((r) => r.kind === "check").map((r) =>
        (r as { block: number }).block
      );
      assert.ok(checks.length > 0);
      // One data block as a COPY of a block this destination does not hold.
      const forged = checked.map((r): CpRecord =>
        r.kind === "data" && r.block === s.walk.block(s.walk.length - 1)
          ? { kind: "copy", block: r.block, from: 3, check: new Uint8Array(16) }
          : r
      );
      const result = await applyCatchUp(dest, stream(forged), newWireStats());
      assert.equal(result.committed, false);
      const need = (result as { need: number[] }).need;
      assert.deepEqual(need, [...checks, s.walk.block(s.walk.length - 1)].sort((a, b) => a - b));
      assert.notEqual(dest.catchUp, null, "nothing committed");
      assert.equal(dest.superblock.cp, 0);
      // Resent as DATA from the durable progress on, the image completes.
      const again = await records(
        source(src, dest, {
          checkThrough: 1,
          forceData: new Set(need),
          resumeFrom: dest.catchUp!.blocksDone,
        }),
      );
      assert.equal(again.some((r) => r.kind === "check"), false);
      const done = await applyCatchUp(dest, stream(again), newWireStats());
      assert.equal(done.committed, true);
      await assertImage(dest, src, objects);
    } finally {
      await dest.close();
      await src.close();
    }
  });
});

Deno.test("catch-up apply: a block written twice is the sender's fault", async () => {
  await withTempDir(async (dir) => {
    const { store: src } = await sourceAt2(`${dir}/s`);
    const dest = await ObjectStore.open(`${dir}/d`, { ...OPTS, mirror: true });
    try {
      const s = source(src, dest);
      begin(dest, src, s.walk.length * 4096);
      const all = await records(s);
      const twice = [...all.slice(0, 10), all[5], ...all.slice(10)];
      await assert.rejects(
        () => applyCatchUp(dest, stream(twice), newWireStats()),
        (e) => e instanceof RefsyncError && e.code === "conflict" && /twice/.test(e.message),
      );
      assert.equal(dest.superblock.cp, 0);
    } finally {
      await dest.close();
      await src.close();
    }
  });
});

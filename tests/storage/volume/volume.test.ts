/**
 * The copy-on-write volume on real files: superblock selection (highest valid
 * CP, bit flips and torn writes passed over), the copy-on-write invariants of
 * a CpTransaction (no write or claim of a live block, released blocks kept
 * until freed), abort, and a torn CP that never became visible.
 */
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import fs from "node:fs";
import { AssertionError } from "../../../src/assert.ts";
import { isError } from "../../../src/errors/mod.ts";
import { Bitmap } from "../../../src/storage/volume/bitmap.ts";
import {
  assertSuccessor,
  decodeSuperblock,
  encodeSuperblock,
  type Superblock,
  superblockSlot,
} from "../../../src/storage/volume/superblock.ts";
import { type CpTransaction, Volume } from "../../../src/storage/volume/volume.ts";
import { FullDisk } from "../../support/faulty-fs.ts";
import { assertBytes, Prng, seeded, testSeed, withSeed, withTempDir } from "../helpers.ts";

/** A block whose bytes say which CP and block wrote it. */
function stamp(cp: number, block: number, rng?: Prng): Uint8Array {
  const out = rng ? rng.bytes(BLOCK_SIZE) : new Uint8Array(BLOCK_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, cp, true);
  view.setUint32(4, block, true);
  return out;
}

/** Commits `tx` with the committed superblock's fields and a recognizable lsnCovered. */
function commitNext(vol: Volume, tx: CpTransaction): Promise<Superblock> {
  return tx.commit({ ...vol.superblock, cp: tx.cp, lsnCovered: tx.cp * 10 });
}

/** Flips one bit of byte `offset` of the volume file. */
function flipByte(path: string, offset: number): void {
  const fd = fs.openSync(path, "r+");
  try {
    const b = new Uint8Array(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] ^= 0x10;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAt(path: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.openSync(path, "r+");
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates a volume with CPs 1..n, each writing two stamped blocks; returns the
 * blocks written by each CP.
 */
async function buildCps(path: string, n: number): Promise<Map<number, number[]>> {
  const vol = await Volume.open(path);
  const byCp = new Map<number, number[]>();
  try {
    for (let i = 0; i < n; i++) {
      const tx = vol.beginCp();
      const blocks = [tx.allocate(), tx.allocate()];
      for (const b of blocks) tx.write(b, stamp(tx.cp, b), "data", 0);
      await commitNext(vol, tx);
      byCp.set(tx.cp, blocks);
    }
  } finally {
    vol.close();
  }
  return byCp;
}

Deno.test("volume: create, then reopen the same volume", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    const vol = await Volume.open(path);
    const sb = vol.superblock;
    assert.equal(sb.cp, 0);
    assert.equal(sb.catalogRoot, null);
    assert.equal(sb.blockCount, 2);
    assert.equal(sb.pairGeneration, 1);
    assert.equal(sb.volumeId.length, 16);
    assert.equal(vol.previousSuperblock, null);
    assert.ok(vol.isLive(0) && vol.isLive(1), "superblock slots are live");
    vol.close();
    assert.equal(
      fs.statSync(path).size,
      2 * BLOCK_SIZE,
      "a new volume is its two superblock slots",
    );

    const again = await Volume.open(path);
    assert.deepEqual(again.superblock, sb);
    again.close();
  });
});

Deno.test("volume: not a volume / both slots corrupt -> clear error", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    await Deno.writeFile(path, new Uint8Array(3 * BLOCK_SIZE).fill(7));
    await assert.rejects(() => Volume.open(path), /no valid superblock/);

    await Deno.remove(path);
    await buildCps(path, 3);
    flipByte(path, 100);
    flipByte(path, BLOCK_SIZE + 100);
    await assert.rejects(() => Volume.open(path), /both slots are corrupt/);
  });
});

Deno.test(
  "superblock: encode/decode round trip, any flipped byte is refused",
  seeded(0x5b01, (seed) => {
    const rng = new Prng(seed);
    for (let round = 0; round < 40; round++) {
      const sb: Superblock = {
        volumeId: rng.bytes(16),
        pairGeneration: rng.range(1, 1000),
        cp: rng.range(0, 2 ** 40),
        lsnCovered: rng.range(0, 2 ** 45),
        catalogRoot: rng.chance(0.2) ? null : { block: rng.range(2, 2 ** 31), birth: rng.u32() },
        blockCount: rng.range(2, 2 ** 32),
        volumeDigest: rng.bytes(32),
        promotedAtLsn: rng.range(0, 2 ** 45),
        promotedFromCp: rng.range(0, 2 ** 40),
        promotedFromDigest: rng.bytes(32),
      };
      const bytes = encodeSuperblock(sb);
      assert.equal(bytes.length, BLOCK_SIZE);
      assert.deepEqual(decodeSuperblock(bytes), sb, `seed ${seed} round ${round}`);
      const bad = bytes.slice();
      bad[rng.int(BLOCK_SIZE)] ^= 1 << rng.int(8);
      assert.equal(decodeSuperblock(bad), null, `seed ${seed}: a flipped bit must be refused`);
      assert.equal(decodeSuperblock(bytes.subarray(0, BLOCK_SIZE - 1)), null);
    }
    assert.equal(decodeSuperblock(new Uint8Array(BLOCK_SIZE)), null, "zeros are no superblock");
    assert.equal(superblockSlot(6), 0);
    assert.equal(superblockSlot(7), 1);
  }),
);

Deno.test("volume: several CPs, reopen -> the highest valid CP and its previous", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    const byCp = await buildCps(path, 5);
    const vol = await Volume.open(path);
    try {
      assert.equal(vol.superblock.cp, 5);
      assert.equal(vol.superblock.lsnCovered, 50);
      assert.equal(vol.previousSuperblock?.cp, 4);
      assert.equal(vol.previousSuperblock?.lsnCovered, 40);
      // 2 slots + 2 blocks per CP, none freed: the high-water mark.
      assert.equal(vol.superblock.blockCount, 2 + 2 * 5);
      for (const [cp, blocks] of byCp) {
        for (const b of blocks) assertBytes(vol.readBlock(b), stamp(cp, b), `block ${b}`);
      }
      // Past the end of the file: zeros.
      const past = vol.readBlock(vol.superblock.blockCount + 10);
      assert.equal(past.length, BLOCK_SIZE);
      assert.ok(past.every((b) => b === 0));
    } finally {
      vol.close();
    }
  });
});

Deno.test("volume: newest slot corrupt (bit flip anywhere) -> the previous CP wins", async () => {
  const seed = testSeed(0x5b02);
  await withSeed(seed, "volume corrupt slot", async () => {
    const rng = new Prng(seed);
    for (let round = 0; round < 6; round++) {
      await withTempDir(async (dir) => {
        const path = `${dir}/volume.dat`;
        const n = rng.range(2, 6);
        await buildCps(path, n);
        const slot = superblockSlot(n);
        // Anywhere: magic, fields, padding or the checksum itself.
        const offset = round === 0 ? 0 : round === 1 ? BLOCK_SIZE - 1 : rng.int(BLOCK_SIZE);
        flipByte(path, slot * BLOCK_SIZE + offset);
        const vol = await Volume.open(path);
        assert.equal(vol.superblock.cp, n - 1, `CP ${n} corrupt at byte ${offset}`);
        assert.equal(vol.superblock.lsnCovered, (n - 1) * 10);
        assert.equal(vol.previousSuperblock, null, "only one valid slot is left");
        // The next CP goes to the corrupt slot (n % 2) and repairs it.
        const tx = vol.beginCp();
        assert.equal(tx.cp, n);
        const b = tx.allocate();
        tx.write(b, stamp(n, b), "data", 0);
        await commitNext(vol, tx);
        vol.close();
        const again = await Volume.open(path);
        assert.equal(again.superblock.cp, n);
        assert.equal(again.previousSuperblock?.cp, n - 1);
        again.close();
      });
    }
  });
});

Deno.test("volume: the valid slot with the highest CP wins; a torn superblock is passed over", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    await buildCps(path, 4); // CP 4 in slot 0, CP 3 in slot 1
    const vol = await Volume.open(path);
    const cp4 = encodeSuperblock(vol.superblock);
    const cp5 = encodeSuperblock({ ...vol.superblock, cp: 5 });
    vol.close();
    // Torn: only the first half of CP 5's superblock reached slot 1.
    writeAt(path, BLOCK_SIZE, cp5.subarray(0, BLOCK_SIZE / 2));
    let v = await Volume.open(path);
    assert.equal(v.superblock.cp, 4);
    assert.equal(v.previousSuperblock, null, "slot 1 is torn");
    v.close();
    // A copy of the committed CP in the other slot changes nothing.
    writeAt(path, BLOCK_SIZE, cp4);
    v = await Volume.open(path);
    assert.equal(v.superblock.cp, 4);
    v.close();
    // A complete CP 5 in the other slot wins.
    writeAt(path, BLOCK_SIZE, cp5);
    v = await Volume.open(path);
    assert.equal(v.superblock.cp, 5);
    assert.equal(v.previousSuperblock?.cp, 4);
    v.close();
    // So does a catch-up's CP 8 there (CP n is in slot n % 2 only while CPs go one by one):
    // the slot not holding the committed CP is the one written, and 4 is not 8's previous.
    writeAt(path, BLOCK_SIZE, encodeSuperblock({ ...decodeSuperblock(cp4)!, cp: 8 }));
    v = await Volume.open(path);
    assert.equal(v.superblock.cp, 8);
    assert.equal(v.previousSuperblock, null);
    v.close();
  });
});

Deno.test("volume: copy-on-write: write or claim of a live block throws", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    let vol = await Volume.open(path);
    let tx = vol.beginCp();
    const a = tx.allocate();
    const b = tx.allocate();
    tx.write(a, stamp(1, a), "data", 0);
    tx.write(b, stamp(1, b), "meta", 0);
    assert.throws(() => tx.write(a, stamp(1, a), "data", 0), /written twice/);
    assert.throws(() => tx.write(a, new Uint8Array(100), "data", 0), /4096 bytes/);
    const notAllocated = b + 5;
    assert.throws(() => tx.write(notAllocated, stamp(1, 0), "data", 0), /without being allocated/);
    assert.throws(() => tx.release(notAllocated), /not live/);
    await commitNext(vol, tx);
    assert.ok(vol.isLive(a) && vol.isLive(b));
    assert.deepEqual([0, 1].map((r) => tx.written.block(r)), [a, b]);
    assert.throws(() => tx.allocate(), /already committed/);

    tx = vol.beginCp();
    assert.throws(() => vol.beginCp(), /already in progress/);
    assert.throws(() => tx.write(a, stamp(2, a), "data", 0), /without being allocated/);
    assert.throws(() => tx.claim(a), /live in CP 1/);
    assert.throws(() => tx.claim(0), /live/);
    assert.throws(() => tx.claim(1), /live/);
    for (let i = 0; i < 20; i++) {
      const c = tx.allocate();
      assert.ok(c !== a && c !== b && c > 1, `allocate handed out live block ${c}`);
    }
    // A free block chosen elsewhere (the destination's case) can be claimed and written.
    const far = 1000;
    tx.claim(far);
    tx.claim(far); // idempotent
    tx.write(far, stamp(2, far), "data", 0);
    await commitNext(vol, tx);
    assert.equal(vol.superblock.blockCount, far + 1, "claim raises the high-water mark");
    vol.close();

    // After reopen, the engine marks the tree's blocks live; the same rules hold.
    vol = await Volume.open(path);
    for (const blk of [a, b, far]) vol.markLive(blk);
    tx = vol.beginCp();
    assert.throws(() => tx.claim(far), /live in CP 2/);
    assert.throws(() => tx.write(far, stamp(3, far), "data", 0), /without being allocated/);
    const fresh = tx.allocate();
    assert.ok(![0, 1, a, b, far].includes(fresh));
    tx.abort();
    assertBytes(vol.readBlock(far), stamp(2, far), "block written by CP 2");
    vol.close();
  });
});

Deno.test("volume: released blocks are not reused until freed", async () => {
  await withTempDir(async (dir) => {
    const vol = await Volume.open(`${dir}/volume.dat`);
    try {
      let tx = vol.beginCp();
      const blocks = Array.from({ length: 6 }, () => tx.allocate());
      for (const b of blocks) tx.write(b, stamp(1, b), "data", 0);
      await commitNext(vol, tx);

      // CP 2 replaces blocks[1] and blocks[3].
      tx = vol.beginCp();
      const replaced = [blocks[1], blocks[3]];
      for (const b of replaced) {
        tx.release(b);
        const nb = tx.allocate();
        assert.ok(!replaced.includes(nb), "a block released in this CP is not reused by it");
        tx.write(nb, stamp(2, nb), "data", b);
      }
      await commitNext(vol, tx);
      assert.deepEqual(tx.released, replaced);
      for (const b of replaced) assert.ok(vol.isLive(b), "released stays in use until free()");

      // CP 3: still not reused, not writable.
      tx = vol.beginCp();
      const got = Array.from({ length: 30 }, () => tx.allocate());
      for (const b of replaced) {
        assert.ok(!got.includes(b), `block ${b} reused before free()`);
        assert.throws(() => tx.write(b, stamp(3, b), "data", 0));
        assert.throws(() => tx.claim(b));
      }
      tx.abort();

      assert.throws(() => vol.free([1]), /superblock slot/);
      vol.free(replaced);
      assert.ok(!vol.isLive(replaced[0]) && !vol.isLive(replaced[1]));
      tx = vol.beginCp();
      // The allocator hands out the lowest free blocks first.
      assert.deepEqual([tx.allocate(), tx.allocate()], replaced);
      tx.abort();
    } finally {
      vol.close();
    }
  });
});

Deno.test("volume: abort leaves the committed CP intact, also on disk", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    let vol = await Volume.open(path);
    let tx = vol.beginCp();
    const kept = [tx.allocate(), tx.allocate()];
    for (const b of kept) tx.write(b, stamp(1, b), "data", 0);
    const cp1 = await commitNext(vol, tx);

    tx = vol.beginCp();
    const doomed = [tx.allocate(), tx.allocate(), tx.allocate()];
    for (const b of doomed) tx.write(b, stamp(2, b), "data", 0);
    tx.release(kept[0]);
    await tx.flush(); // the blocks reach the file...
    tx.abort(); // ...but the CP is abandoned
    tx.abort(); // idempotent
    assert.throws(() => tx.allocate(), /already committed or aborted/);
    await assert.rejects(() => commitNext(vol, tx), /already committed or aborted/);
    assert.deepEqual(vol.superblock, cp1);
    assert.ok(vol.isLive(kept[0]), "a release of an aborted CP does not count");

    // The aborted CP's blocks are free space again.
    tx = vol.beginCp();
    assert.equal(tx.cp, 2, "the aborted CP number is taken again");
    assert.deepEqual(doomed.map(() => tx.allocate()), doomed);
    tx.abort();
    vol.close();

    vol = await Volume.open(path);
    assert.deepEqual(vol.superblock, cp1);
    for (const b of kept) assertBytes(vol.readBlock(b), stamp(1, b), `block ${b}`);
    vol.close();
  });
});

Deno.test(
  "volume: a torn CP (blocks written, superblock not) is invisible after reopen",
  seeded(0x5b03, async (seed) => {
    await withTempDir(async (dir) => {
      const path = `${dir}/volume.dat`;
      const rng = new Prng(seed);
      let vol = await Volume.open(path);
      let tx = vol.beginCp();
      const committed = new Map<number, Uint8Array>();
      for (let i = 0; i < 8; i++) {
        const b = tx.allocate();
        const data = stamp(1, b, rng);
        tx.write(b, data, "data", 0);
        committed.set(b, data);
      }
      const cp1 = await commitNext(vol, tx);

      // CP 2 writes 300 blocks (some flushed early), never writes its superblock.
      tx = vol.beginCp();
      for (let i = 0; i < 300; i++) {
        const b = tx.allocate();
        tx.write(b, stamp(2, b, rng), "data", 0);
        if (i === 150) await tx.flush();
      }
      await tx.flush();
      assert.ok(tx.blockCount > cp1.blockCount);
      vol.close(); // the "crash": the transaction is simply gone

      vol = await Volume.open(path);
      assert.deepEqual(vol.superblock, cp1, "the torn CP 2 is not visible");
      assert.equal(vol.superblock.blockCount, 10);
      for (const [b, data] of committed) assertBytes(vol.readBlock(b), data, `block ${b}`);
      // CP 2 is written again from scratch over the torn blocks.
      for (const b of committed.keys()) vol.markLive(b);
      tx = vol.beginCp();
      assert.equal(tx.cp, 2);
      const b = tx.allocate();
      assert.equal(b, 10, "the torn CP's blocks are free space");
      tx.write(b, stamp(2, b), "data", 0);
      await commitNext(vol, tx);
      vol.close();
      vol = await Volume.open(path);
      assert.equal(vol.superblock.cp, 2);
      assertBytes(vol.readBlock(10), stamp(2, 10), "block 10");
      vol.close();
    });
  }),
);

Deno.test("volume: commitEncoded writes the given superblock bytes; wrong CP refused", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    const vol = await Volume.open(path);
    let tx = vol.beginCp();
    const b = tx.allocate();
    tx.write(b, stamp(1, b), "data", 0);
    await assert.rejects(
      () => tx.commit({ ...vol.superblock, cp: 7 }),
      (e: unknown) => e instanceof AssertionError && /CP 7 is committed over CP 0/.test(e.message),
    );
    const wrong = encodeSuperblock({ ...vol.superblock, cp: 2 });
    await assert.rejects(() => tx.commitEncoded(wrong), /invalid superblock for CP 1/);
    const bad = encodeSuperblock({ ...vol.superblock, cp: 1 });
    bad[200] ^= 1;
    await assert.rejects(() => tx.commitEncoded(bad), /invalid superblock/);
    const bytes = encodeSuperblock({ ...vol.superblock, cp: 1, lsnCovered: 77, blockCount: 3 });
    const sb = await tx.commitEncoded(bytes);
    assert.equal(sb.cp, 1);
    assert.equal(vol.superblock.lsnCovered, 77);
    tx = vol.beginCp();
    tx.abort();
    vol.close();
    const fd = fs.openSync(path, "r");
    const slot = new Uint8Array(BLOCK_SIZE);
    fs.readSync(fd, slot, 0, BLOCK_SIZE, BLOCK_SIZE);
    fs.closeSync(fd);
    assertBytes(slot, bytes, "slot 1 holds exactly the given bytes");
  });
});

Deno.test("volume: a CP whose superblock goes back (LSN, generation) or changes volume is refused unwritten", async () => {
  await withTempDir(async (dir) => {
    const vol = await Volume.open(`${dir}/volume.dat`);
    let tx = vol.beginCp();
    await tx.commit({ ...vol.superblock, cp: 1, lsnCovered: 50, pairGeneration: 2 });
    const committed = vol.superblock;
    const bad: Array<[string, Partial<Superblock>, RegExp]> = [
      ["lsnCovered back", { lsnCovered: 49 }, /covers LSN 49, below CP 1's 50/],
      ["generation back", { pairGeneration: 1 }, /pair generation 1, below 2/],
      ["another volume", { volumeId: new Uint8Array(16).fill(9) }, /of volume 0909/],
      ["CP skipped", { cp: 3 }, /CP 3 is committed over CP 1/],
    ];
    for (const [what, change, message] of bad) {
      tx = vol.beginCp();
      const next = { ...committed, cp: 2, lsnCovered: 60, ...change };
      const refused = (e: unknown) => e instanceof AssertionError && message.test(e.message);
      if (change.cp === undefined) {
        await assert.rejects(() => tx.commitEncoded(encodeSuperblock(next)), refused, what);
      }
      await assert.rejects(() => tx.commit(next), refused, what);
      tx.abort();
      assert.deepEqual(vol.superblock, committed, `${what}: nothing committed`);
    }
    vol.close();
    const again = await Volume.open(`${dir}/volume.dat`);
    assert.equal(again.superblock.cp, 1, "nothing was written");
    again.close();
  });
});

Deno.test("assertSuccessor: a destination's first CP takes its source's volume id", () => {
  const current: Superblock = {
    volumeId: new Uint8Array(16).fill(1),
    pairGeneration: 1,
    cp: 0,
    lsnCovered: 0,
    catalogRoot: null,
    blockCount: 2,
    volumeDigest: new Uint8Array(32),
    promotedAtLsn: 0,
    promotedFromCp: 0,
    promotedFromDigest: new Uint8Array(32),
  };
  const source = new Uint8Array(16).fill(2);
  assertSuccessor(current, { ...current, cp: 1, volumeId: source, lsnCovered: 7 });
  assert.throws(
    () => assertSuccessor({ ...current, cp: 1 }, { ...current, cp: 2, volumeId: source }),
    AssertionError,
  );
});

Deno.test(
  "bitmap: set/clear/has/nextClear against a Set model",
  seeded(0x5b04, (seed) => {
    const rng = new Prng(seed);
    const bits = new Bitmap(64);
    const model = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const n = rng.chance(0.1) ? rng.int(200_000) : rng.int(2000);
      if (rng.chance(0.6)) {
        bits.set(n);
        model.add(n);
      } else {
        bits.clear(n);
        model.delete(n);
      }
      const probe = rng.int(2100);
      assert.equal(bits.has(probe), model.has(probe), `seed ${seed} step ${i} has(${probe})`);
      let want = probe;
      while (model.has(want)) want++;
      assert.equal(bits.nextClear(probe), want, `seed ${seed} step ${i} nextClear(${probe})`);
    }
    const copy = bits.clone();
    copy.set(5);
    copy.clear(6);
    assert.equal(bits.has(5), model.has(5), "clone is independent");
    assert.equal(bits.has(6), model.has(6), "clone is independent");
    assert.ok(bits.nextClear(bits.capacity + 3) === bits.capacity + 3);
  }),
);

Deno.test("volume: a full disk mid-CP aborts it, unused blocks are counted, a later CP commits", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    const disk = new FullDisk();
    const vol = await Volume.open(path, { fileOps: disk });
    try {
      assert.equal(vol.unusedBytes, 0, "a new volume is its two superblock slots, both in use");
      // 300 blocks (more than the 1 MiB write buffer): a third of them fit.
      disk.budget = 100 * BLOCK_SIZE;
      const tx = vol.beginCp();
      const blocks = Array.from({ length: 300 }, () => tx.allocate());
      assert.throws(() => {
        for (const b of blocks) tx.write(b, stamp(tx.cp, b), "data", 0);
        tx.flush();
      }, (e) => isError(e, "no_space"));
      tx.abort();
      assert.equal(vol.superblock.cp, 0);
      assert.equal(vol.unusedBytes, 100 * BLOCK_SIZE, "the aborted CP's blocks are free space");

      disk.budget = Infinity;
      const again = vol.beginCp();
      const next = Array.from({ length: 300 }, () => again.allocate());
      assert.deepEqual(next, blocks, "the free blocks are reused first");
      for (const b of next) again.write(b, stamp(again.cp, b), "data", 0);
      await commitNext(vol, again);
      assert.equal(vol.unusedBytes, 0);
    } finally {
      vol.close();
    }
    const reopened = await Volume.open(path);
    try {
      assert.equal(reopened.superblock.cp, 1);
      for (const b of [2, 150, 301]) assertBytes(reopened.readBlock(b), stamp(1, b), `block ${b}`);
    } finally {
      reopened.close();
    }
  });
});

Deno.test("volume: a failed superblock write refuses further CPs until reopened", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    await buildCps(path, 1);
    const disk = new FullDisk();
    const vol = await Volume.open(path, { fileOps: disk });
    try {
      const tx = vol.beginCp();
      const b = tx.allocate();
      tx.write(b, stamp(tx.cp, b), "data", 0);
      disk.budget = BLOCK_SIZE; // the block fits, the superblock does not
      await assert.rejects(commitNext(vol, tx), (e) => isError(e, "no_space"));
      tx.abort();
      disk.budget = Infinity;
      assert.throws(() => vol.beginCp(), /superblock of CP 2 could not be written.*reopen/);
    } finally {
      vol.close();
    }
    const reopened = await Volume.open(path);
    try {
      assert.equal(reopened.superblock.cp, 1, "the committed CP is intact");
      const tx = reopened.beginCp();
      tx.abort();
    } finally {
      reopened.close();
    }
  });
});

Deno.test("volume: rollBack makes the previous CP the committed one, durably; the next commit takes the freed slot", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    await buildCps(path, 5);
    let vol = await Volume.open(path);
    try {
      const four = vol.previousSuperblock!;
      assert.equal(four.cp, 4);
      vol.rollBack();
      assert.deepEqual(vol.superblock, four);
      assert.equal(vol.previousSuperblock, null);
      assert.throws(() => vol.rollBack(), /no previous CP/);
      vol.close();
      // A restart sees CP 4: CP 5's slot holds no valid superblock any more.
      vol = await Volume.open(path);
      assert.equal(vol.superblock.cp, 4);
      assert.equal(vol.previousSuperblock, null);
      assert.equal(decodeSuperblock(vol.readBlock(superblockSlot(5))), null);
      assert.equal(vol.nextSlot, superblockSlot(5));
    } finally {
      vol.close();
    }
  });
});

Deno.test("volume: blocks written as views of one buffer, of several, and reversed land where they were written", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/vol`;
    const vol = await Volume.open(path);
    const rng = new Prng(testSeed(0xf1a5));
    const block = (bytes: Uint8Array, i: number) =>
      bytes.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
    // One run of consecutive blocks: 3 side by side in one buffer, 20 in another (written as they
    // are), 2 of a buffer in reverse order, one at the offset where the one before ends but in a
    // buffer of its own, one copy.
    const small = rng.bytes(3 * BLOCK_SIZE);
    const big = rng.bytes(20 * BLOCK_SIZE);
    const reversed = rng.bytes(2 * BLOCK_SIZE);
    const views: Uint8Array[] = [
      ...[0, 1, 2].map((i) => block(small, i)),
      ...Array.from({ length: 20 }, (_, i) => block(big, i)),
      block(reversed, 1),
      block(reversed, 0),
      block(rng.bytes(2 * BLOCK_SIZE), 1),
      block(small, 0).slice(),
    ];
    // Another run: 17 views at adjacent offsets, each in a buffer of its own.
    const apart = Array.from({ length: 17 }, (_, i) => block(rng.bytes((i + 1) * BLOCK_SIZE), i));
    const written: Array<{ block: number; bytes: Uint8Array }> = [];
    for (const run of [views, apart]) {
      const tx = vol.beginCp();
      for (const bytes of run) {
        const b = tx.allocate();
        tx.write(b, bytes, "data", 0);
        written.push({ block: b, bytes });
      }
      await commitNext(vol, tx);
    }
    vol.close();
    const again = await Volume.open(path);
    try {
      for (const [i, w] of written.entries()) {
        assert.deepEqual(again.readBlock(w.block), w.bytes, `view ${i}`);
      }
    } finally {
      again.close();
    }
  });
});

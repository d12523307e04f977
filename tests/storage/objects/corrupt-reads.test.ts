/**
 * A byte flipped in a data (or map) block of a store's `volume.dat` is never
 * read back as bytes: GET streams (before the first byte when the block is in
 * the first piece, else the stream errors), stat's ETag hashing, listings, and
 * a CP that would patch the block into a new one. `verifyVolume` names each
 * damaged block and its key. Blocks are found in the file by their content.
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { verifyVolume } from "../../../src/storage/verify.ts";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import { blocksHolding, damageFileBlock as damage, overwrite } from "../../support/datadir.ts";
import { bytesStream, drain, Prng, seeded, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const MiB = 1 << 20;

/** Warnings and errors the store logs. */
function capture() {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    logger: createLogger({ level: "warn", sink: (l) => lines.push(JSON.parse(l)) }),
  };
}

const isCorrupt = (block: number, key: string) => (e: unknown) =>
  isError(e, "corrupt") && e.message.includes(`data block ${block} of '${key}'`);

/** Writes `objects` (key -> bytes, whole PUTs), CPs, closes. */
async function populate(dir: string, objects: Record<string, Uint8Array>): Promise<void> {
  const store = await ObjectStore.open(dir, STORE_OPTS);
  try {
    for (const [key, bytes] of Object.entries(objects)) {
      await store.write(key, bytesStream(bytes), { replace: true, offset: 0 });
    }
    await store.checkpoint();
  } finally {
    await store.close();
  }
}

Deno.test(
  "corrupt reads: a flipped byte in a data block is never read back, and names block and key",
  seeded(0xc4ed, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const small = rng.bytes(20_000); // inline map (5 blocks)
      const big = rng.bytes(3 * MiB + 100); // a map block; three read chunks and a bit
      const intact = rng.bytes(5 * BLOCK_SIZE);
      await populate(dir, { small, big, intact });
      const smallBlock = damage(dir, small, 2);
      const earlyBlock = damage(dir, big, 0);
      const log = capture();
      let store = await ObjectStore.open(dir, { ...STORE_OPTS, logger: log.logger });
      try {
        // The first piece is read before the stream exists: the error comes before any header.
        assert.throws(() => store.read("small", 0, small.length), isCorrupt(smallBlock, "small"));
        assert.throws(() => store.read("small", 8192, 8193), isCorrupt(smallBlock, "small"));
        assert.throws(() => store.read("big", 0, 10), isCorrupt(earlyBlock, "big"));
        // Blocks that are intact still read, around the damaged one.
        assert.deepEqual(await drain(store.read("small", 0, 8192)), small.subarray(0, 8192));
        assert.deepEqual(
          await drain(store.read("small", 12288, small.length)),
          small.subarray(12288),
        );
        assert.deepEqual(await drain(store.read("intact", 0, intact.length)), intact);
        const logged = log.lines.filter((l) => l.event === "store.corrupt_block");
        assert.ok(logged.length >= 3, JSON.stringify(log.lines));
        assert.deepEqual(
          {
            level: logged[0].level,
            key: logged[0].key,
            block: logged[0].block,
            kind: logged[0].kind,
          },
          { level: "error", key: "small", block: smallBlock, kind: "data" },
        );
      } finally {
        await store.close();
      }
      // A damaged block past the first piece errors the stream: the body never completes.
      const lateBlock = damage(dir, big, 2 * 256 + 3);
      const later = capture();
      store = await ObjectStore.open(dir, { ...STORE_OPTS, logger: later.logger });
      try {
        const stream = store.read("big", MiB, big.length);
        await assert.rejects(drain(stream), isCorrupt(lateBlock, "big"));
        assert.deepEqual(
          later.lines.map((l) => [l.event, l.key, l.block]),
          [["store.corrupt_block", "big", lateBlock]],
        );
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "corrupt reads: stat's ETag hashing and a CP patching the block refuse a damaged block",
  seeded(0xc4ee, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const bytes = rng.bytes(6 * BLOCK_SIZE);
      let store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        // Ranged writes leave the ETag unknown: stat must hash the bytes.
        await store.write("r", bytesStream(bytes.subarray(0, 3 * BLOCK_SIZE)), {
          replace: false,
          offset: 0,
        });
        await store.write("r", bytesStream(bytes.subarray(3 * BLOCK_SIZE)), {
          replace: false,
          offset: 3 * BLOCK_SIZE,
        });
        await store.checkpoint();
      } finally {
        await store.close();
      }
      const block = damage(dir, bytes, 4);
      const log = capture();
      store = await ObjectStore.open(dir, { ...STORE_OPTS, logger: log.logger });
      try {
        assert.throws(() => store.stat("r"), isCorrupt(block, "r"));
        assert.throws(() => store.list({ limit: 10 }), isCorrupt(block, "r"));
        // A partial write over the damaged block: the CP refuses to patch it into a new block
        // (which would get a fresh, valid check), logs it at error, and commits nothing.
        const cp = store.superblock.cp;
        await store.write("r", bytesStream(new Uint8Array([1, 2, 3])), {
          replace: false,
          offset: 4 * BLOCK_SIZE + 10,
        });
        await assert.rejects(store.checkpoint(), isCorrupt(block, "r"));
        assert.equal(store.superblock.cp, cp);
        const failed = log.lines.find((l) => l.event === "cp.failed");
        assert.equal(failed?.level, "error", JSON.stringify(log.lines));
        // Replacing the object is the way out: the CP then reads nothing of the old one.
        const fresh = rng.bytes(2 * BLOCK_SIZE);
        await store.write("r", bytesStream(fresh), { replace: true, offset: 0 });
        await store.checkpoint();
        assert.equal(store.superblock.cp, cp + 1);
        assert.deepEqual(await drain(store.read("r", 0, fresh.length)), fresh);
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "corrupt reads: verifyVolume names each damaged block with its key; intact volumes verify clean",
  seeded(0xc4ef, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const a = rng.bytes(3 * BLOCK_SIZE);
      const b = rng.bytes(2 * MiB);
      await populate(dir, { a, "dir/b": b, c: rng.bytes(100) });
      const clean = await verifyVolume(dir);
      assert.deepEqual(
        { ok: clean.ok, damaged: clean.damaged, errors: clean.errors, objects: clean.objects },
        { ok: true, damaged: [], errors: [], objects: 3 },
      );
      const blockA = damage(dir, a, 1);
      const blockB = damage(dir, b, 300);
      const report = await verifyVolume(dir);
      assert.equal(report.ok, false);
      assert.deepEqual(report.damaged, [
        { block: blockA, key: "a", kind: "data" },
        { block: blockB, key: "dir/b", kind: "data" },
      ]);
      // Named once each: not again as an ETag mismatch.
      assert.equal(report.errors.length, 2, JSON.stringify(report.errors));
      assert.match(report.errors[0], new RegExp(`data block ${blockA} of 'a'`));
    });
  }),
);

Deno.test(
  "corrupt reads: verifyVolume reports a damaged map block with its key",
  seeded(0xc4f0, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const b = rng.bytes(100 * BLOCK_SIZE); // one map block
      await populate(dir, { b });
      // The map block is the only block of the volume that holds b's block numbers; find it
      // as the one block that is neither a superblock, a data block of b, nor a catalog node
      // ("RCN1" at offset 0).
      const file = Deno.readFileSync(`${dir}/volume.dat`);
      const data = new Set<number>();
      for (let fb = 0; fb < b.length / BLOCK_SIZE; fb++) {
        const [at] = blocksHolding(dir, b.subarray(fb * BLOCK_SIZE, (fb + 1) * BLOCK_SIZE));
        data.add(at);
      }
      const others: number[] = [];
      for (let blk = 2; (blk + 1) * BLOCK_SIZE <= file.length; blk++) {
        const head = new TextDecoder().decode(
          file.subarray(blk * BLOCK_SIZE, blk * BLOCK_SIZE + 4),
        );
        if (!data.has(blk) && head !== "RCN1") others.push(blk);
      }
      assert.equal(others.length, 1, `one map block (${others})`);
      overwrite(`${dir}/volume.dat`, others[0] * BLOCK_SIZE + 100, new Uint8Array([0xff]));
      const report = await verifyVolume(dir);
      assert.equal(report.ok, false);
      assert.deepEqual(report.damaged, [{ block: others[0], key: "b", kind: "map" }]);
    });
  }),
);

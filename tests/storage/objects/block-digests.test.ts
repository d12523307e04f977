/**
 * The storage side of the online verify: the block digests of a committed CP
 * (block order, every live block once, a damaged block flagged as damaged
 * here), the keys of blocks, the pin that keeps the CP's blocks while the list
 * is open, and the repair write, which takes only the bytes the block's own
 * map entry names.
 */
import assert from "node:assert/strict";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import { isError } from "../../../src/errors/mod.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import { blake3 } from "../../../src/hash/blake3.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { verifyVolume } from "../../../src/storage/verify.ts";
import { damageFileBlock as damage } from "../../support/datadir.ts";
import { bytesStream, digestsOf, drain, Prng, seeded, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const MiB = 1 << 20;

async function put(store: ObjectStore, key: string, bytes: Uint8Array): Promise<void> {
  await store.write(key, bytesStream(bytes), { replace: true, offset: 0 });
}

Deno.test(
  "block digests: every live block once in block order, a damaged one flagged, windows agree",
  seeded(0xb10c, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const small = rng.bytes(20_000);
      const big = rng.bytes(2 * MiB + 5); // a map block
      let store = await ObjectStore.open(dir, STORE_OPTS);
      await put(store, "small", small);
      await put(store, "big", big);
      await store.checkpoint();
      const cp = store.superblock.cp;
      const clean = digestsOf(store, cp);
      await store.close();
      // Every block the tree reaches, once (what refsync verify counts).
      assert.equal(clean.length, (await verifyVolume(dir)).blocks);
      assert.ok(clean.length > 5 + 512, `${clean.length} blocks`);
      for (let i = 1; i < clean.length; i++) assert.ok(clean[i - 1].block < clean[i].block);
      assert.deepEqual(clean.filter((d) => d.damaged), []);

      const bad = damage(dir, small, 3);
      store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        const damaged = digestsOf(store, cp);
        assert.deepEqual(damaged.filter((d) => d.damaged).map((d) => d.block), [bad]);
        const differ = damaged.filter((d, i) => d.digest.toHex() !== clean[i].digest.toHex());
        assert.deepEqual(
          differ.map((d) => d.block),
          [bad],
          "only the damaged block's digest moved",
        );
        assert.deepEqual(digestsOf(store, cp, 7), damaged, "a small window lists the same");
        const list = store.openBlockDigests(cp);
        try {
          assert.deepEqual([...list.keysOf([bad, damaged.at(-1)!.block])], [[bad, "small"]]);
        } finally {
          list.close();
        }
        assert.throws(
          () => store.openBlockDigests(cp + 1),
          (e) => isError(e, "conflict") && /CP 2 is not held here/.test(e.message),
        );
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "repairBlock: refuses bytes that do not match the block's map entry, writes the right ones",
  seeded(0x4e9a, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const small = rng.bytes(20_000);
      let store = await ObjectStore.open(dir, STORE_OPTS);
      await put(store, "small", small);
      await store.checkpoint();
      const cp = store.superblock.cp;
      await store.close();
      const bad = damage(dir, small, 1);
      const good = small.slice(BLOCK_SIZE, 2 * BLOCK_SIZE);
      store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        const wrong = good.slice();
        wrong[0] ^= 1;
        await assert.rejects(
          store.repairBlock(bad, wrong),
          (e) =>
            isError(e, "conflict") && e.message.includes(`block ${bad}: the bytes do not match`),
        );
        await assert.rejects(store.repairBlock(bad, good.subarray(0, 100)), /not one block/);
        // A block of another object's bytes, or no live block at all: refused too.
        await assert.rejects(store.repairBlock(bad + 1, good), /do not match/);
        await assert.rejects(store.repairBlock(9999, good), /not a block this side reaches/);
        assert.throws(() => store.read("small", 0, small.length), (e) => isError(e, "corrupt"));
        assert.deepEqual(
          await store.repairBlocks(cp, [{ block: bad, bytes: good }]),
          { repaired: [bad], refused: [] },
        );
        await assert.rejects(store.repairBlocks(cp - 1, []), /committed CP here is/);
        assert.deepEqual(await drain(store.read("small", 0, small.length)), small);
        assert.deepEqual(digestsOf(store, cp).filter((d) => d.damaged), []);
      } finally {
        await store.close();
      }
      // Durable: a reopened store reads it as well.
      store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        assert.deepEqual(await drain(store.read("small", 0, small.length)), small);
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "block digests: an open list pins its CP; later CPs reuse none of its blocks meanwhile",
  seeded(0x9141, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        await put(store, "a", rng.bytes(64 * 1024));
        await put(store, "b", rng.bytes(64 * 1024));
        await store.checkpoint();
        const cp = store.superblock.cp;
        const before = digestsOf(store, cp);
        const list = store.openBlockDigests(cp);
        try {
          // Two CPs replace everything: without the pin CP+2 would reuse the blocks CP+1 freed.
          for (let i = 0; i < 2; i++) {
            await put(store, "a", rng.bytes(64 * 1024));
            await put(store, "b", rng.bytes(64 * 1024));
            await store.checkpoint();
          }
          const during = [...list.blocks];
          assert.deepEqual(during.filter((d) => d.damaged), []);
          assert.deepEqual(
            during.map((d) => d.digest.toHex()),
            before.map((d) => d.digest.toHex()),
          );
        } finally {
          list.close();
        }
        // The digest is the first 16 bytes of the block's BLAKE3.
        const last = digestsOf(store, store.superblock.cp)[0];
        assert.equal(
          last.digest.toHex(),
          blake3(store.volume.readBlock(last.block)).subarray(0, 16).toHex(),
        );
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "block digests: a list left unpulled is released after readIdleMs and errors if pulled again",
  seeded(0x1d1e, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const lines: Array<Record<string, unknown>> = [];
      const logger = createLogger({ level: "warn", sink: (l) => lines.push(JSON.parse(l)) });
      const store = await ObjectStore.open(dir, { ...STORE_OPTS, readIdleMs: 50, logger });
      try {
        await put(store, "a", rng.bytes(64 * 1024));
        await store.checkpoint();
        const cp = store.superblock.cp;
        const list = store.openBlockDigests(cp);
        assert.equal(list.blocks.next().done, false);
        await new Promise((resolve) => setTimeout(resolve, 150));
        assert.throws(
          () => list.blocks.next(),
          (e) => isError(e, "request_timeout") && /not pulled for 50 ms/.test(e.message),
        );
        list.close(); // a second release is harmless
        assert.deepEqual(
          lines.filter((l) => l.event === "store.verify_abandoned").map((l) => [l.cp, l.listed]),
          [[cp, 1]],
        );
        // Nothing holds reclamation now: the CP replacing "a" frees its blocks for reuse.
        await put(store, "a", rng.bytes(64 * 1024));
        await store.checkpoint();
        await put(store, "a", rng.bytes(64 * 1024));
        await store.checkpoint();
        assert.deepEqual(digestsOf(store).filter((d) => d.damaged), []);
      } finally {
        await store.close();
      }
    });
  }),
);

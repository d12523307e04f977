/**
 * What a CP reads of an object's old block map: each map block on the paths of
 * the changed blocks once to find the old pointers (MapCursor) and once more to
 * rewrite it (copy-on-write), however many of the blocks under it changed.
 * Looking each block's old pointer up from the root instead read (and hashed,
 * and decoded into FANOUT pointer objects) the root and a leaf per written
 * block: on the unaligned benchmark, garbage that tripled the source's JS heap.
 */
import assert from "node:assert/strict";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import { FANOUT, walkMap } from "../../../src/storage/blockmap/blockmap.ts";
import { Catalog } from "../../../src/storage/catalog/mod.ts";
import { encodeKey } from "../../../src/storage/objects/key.ts";
import { decodeRecord } from "../../../src/storage/objects/record.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { bytesStream, drain, Prng, seeded, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const MiB = 1 << 20;
/** Two leaves under a root: a map of depth 2. */
const OBJECT_BYTES = (FANOUT + 45) * BLOCK_SIZE;

Deno.test(
  "CP: scattered ranged writes read each old map block twice, not once per written block",
  seeded(0x3a9b, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const store = await ObjectStore.open(dir, { ...STORE_OPTS, maxObjectBytes: 4 * MiB });
      try {
        const model = rng.bytes(OBJECT_BYTES);
        await store.write("big", bytesStream(model), { replace: true, offset: 0 });
        await store.checkpoint();
        const catalog = new Catalog(store.volume, store.volume.superblock.catalogRoot);
        const record = decodeRecord(catalog.get(encodeKey("big"))!);
        assert.equal(record.map.depth, 2);
        const mapBlocks = new Set<number>();
        walkMap(store.volume, record.map, (ptr, isMap) => isMap && mapBlocks.add(ptr.block));
        assert.equal(mapBlocks.size, 3, "a root and two leaves");

        // 40 small writes inside blocks under both leaves (each patches its old block).
        const writes = Array.from({ length: 40 }, (_, i) => {
          const block = i < 20 ? 3 + i * 7 : FANOUT + (i - 20) * 2;
          return { at: block * BLOCK_SIZE + rng.int(BLOCK_SIZE - 100), bytes: rng.bytes(50) };
        });
        for (const w of writes) {
          await store.write("big", bytesStream(w.bytes), {
            replace: false,
            offset: w.at,
            length: w.bytes.length,
          });
          model.set(w.bytes, w.at);
        }
        const reads = new Map<number, number>();
        const readBlock = store.volume.readBlock.bind(store.volume);
        store.volume.readBlock = (block: number) => {
          if (mapBlocks.has(block)) reads.set(block, (reads.get(block) ?? 0) + 1);
          return readBlock(block);
        };
        await store.checkpoint();
        store.volume.readBlock = readBlock;

        assert.deepEqual(
          [...mapBlocks].map((b) => reads.get(b) ?? 0),
          [2, 2, 2],
          "reads of the root and of each leaf",
        );
        const read = await drain(store.read("big", 0, OBJECT_BYTES));
        assert.ok(read.every((b, i) => b === model[i]), "the object reads back as written");
      } finally {
        await store.close();
      }
    });
  }),
);

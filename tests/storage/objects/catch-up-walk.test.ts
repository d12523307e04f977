/**
 * The walk by birth CP (catch-up): on a store with CPs 1..5, the blocks born
 * after CP 3 are exactly the blocks CPs 4 and 5 wrote that are still live at
 * CP 5, each once, metadata before the data it points at; base 0 is the
 * whole live image.
 */
import assert from "node:assert/strict";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { walkBornAfter } from "../../../src/storage/objects/catch-up-walk.ts";
import { walkTree } from "../../../src/storage/objects/recovery.ts";
import { STORE_OPTS } from "../store_model.ts";
import { bytesStream, Prng, withTempDir } from "../helpers.ts";

Deno.test("catch-up walk: blocks born after CP 3 are those CPs 4 and 5 wrote and kept", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      const rng = new Prng(7);
      const put = (key: string, size: number) =>
        store.write(key, bytesStream(rng.bytes(size)), { replace: true, offset: 0 });
      const writtenBy = new Map<number, Set<number>>();
      for (let cp = 1; cp <= 5; cp++) {
        // Each CP rewrites some earlier objects (their old blocks die), adds new ones,
        // patches a block of a big one (one map path rewritten), and deletes one.
        await put(`obj-${cp}`, 300_000 + cp * 5000);
        if (cp === 1) await put("big", 3 << 20);
        if (cp > 1) {
          await store.write("big", bytesStream(rng.bytes(5000)), {
            replace: false,
            offset: cp * 700_000,
          });
          await put(`obj-${cp - 1}`, 9000);
        }
        if (cp === 4) await store.delete("obj-1");
        const result = await store.checkpoint();
        assert.equal(result?.superblock.cp, cp);
        const blocks = new Set<number>();
        for (let r = 0; r < result!.written.count; r++) blocks.add(result!.written.block(r));
        writtenBy.set(cp, blocks);
      }
      const sb = store.superblock;
      const live = new Set<number>();
      walkTree(store.volume, sb.catalogRoot, (block) => live.add(block));
      const expected = [...writtenBy.get(4)!, ...writtenBy.get(5)!].filter((b) => live.has(b));

      const walk = walkBornAfter(store.volume, sb.catalogRoot, 3);
      const got: number[] = [];
      for (let i = 0; i < walk.length; i++) {
        got.push(walk.block(i));
        assert.ok(walk.birth(i) > 3, `block ${walk.block(i)} born in CP ${walk.birth(i)}`);
      }
      assert.equal(new Set(got).size, got.length, "each block once");
      assert.deepEqual([...got].sort((a, b) => a - b), expected.sort((a, b) => a - b));
      // The catalog root comes first (it is rewritten by every CP that changes anything).
      assert.equal(walk.kind(0), "catalog");
      assert.equal(walk.block(0), sb.catalogRoot!.block);

      // From base 0: the whole live image, in the same order as a second walk.
      const all = walkBornAfter(store.volume, sb.catalogRoot, 0);
      assert.equal(all.length, live.size);
      const again = walkBornAfter(store.volume, sb.catalogRoot, 0);
      for (let i = 0; i < all.length; i++) assert.equal(again.block(i), all.block(i));
      // Nothing is born after the committed CP.
      assert.equal(walkBornAfter(store.volume, sb.catalogRoot, 5).length, 0);
    } finally {
      await store.close();
    }
  });
});

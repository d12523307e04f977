/**
 * The optional metadata blob an API writes with an object (the S3 face keeps
 * its MD5 ETag and Content-Type there): committed atomically with the object,
 * served by stat and list from the dirty layer, the catalog, and after a
 * reopen (log replay); dropped by a ranged write; records without it decode.
 */
import assert from "node:assert/strict";
import { EMPTY_MAP } from "../../../src/storage/blockmap/blockmap.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { decodeRecord, encodeRecord } from "../../../src/storage/objects/record.ts";
import { assertBytes, bytesStream, drain, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const META = new TextEncoder().encode("md5+content-type");

Deno.test("store: a metadata blob travels with the object through CP and replay", async () => {
  await withTempDir(async (dir) => {
    const body = new Uint8Array(3 << 20).map((_, i) => i * 7);
    let store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      let called = 0;
      await store.write("a", bytesStream(body), {
        replace: true,
        offset: 0,
        meta: () => (called++, META),
      });
      await store.write("small", bytesStream(new Uint8Array([1, 2])), {
        replace: true,
        offset: 0,
        meta: () => META,
      });
      await store.write("plain", bytesStream(new Uint8Array([3])), { replace: true, offset: 0 });
      assert.equal(called, 1);
      assert.deepEqual(store.stat("a")?.meta, META, "dirty layer");
      assert.deepEqual(store.stat("small")?.meta, META, "one-record body");
      assert.equal(store.stat("plain")?.meta, null);
      assert.deepEqual(store.list({ limit: 10 }).objects.map((o) => o.meta), [META, null, META]);
      await store.close();
      // Replay of the log: the COMMIT record carries the blob.
      store = await ObjectStore.open(dir, STORE_OPTS);
      assert.deepEqual(store.stat("a")?.meta, META, "after replay");
      await store.checkpoint();
      await store.close();
      store = await ObjectStore.open(dir, STORE_OPTS);
      assert.deepEqual(store.stat("a")?.meta, META, "from the catalog");
      assert.deepEqual(store.stat("small")?.meta, META);
      assert.equal(store.stat("plain")?.meta, null);
      assertBytes(await drain(store.read("a", 0, body.length)), body, "bytes");
      // A ranged write changes the bytes: the blob no longer describes them.
      await store.write("a", bytesStream(new Uint8Array([9])), { replace: false, offset: 5 });
      assert.equal(store.stat("a")?.meta, null, "dropped by a ranged write");
      await store.checkpoint();
      assert.equal(store.stat("a")?.meta, null, "still dropped after the CP");
    } finally {
      await store.close();
    }
  });
});

Deno.test("store: a write whose metadata callback throws is not committed", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      await assert.rejects(
        store.write("a", bytesStream(new Uint8Array(10)), {
          replace: true,
          offset: 0,
          meta: () => {
            throw new Error("bad digest");
          },
        }),
        /bad digest/,
      );
      assert.equal(store.stat("a"), null);
    } finally {
      await store.close();
    }
  });
});

Deno.test("record: old records without a blob decode; new ones round-trip", () => {
  const etag = new Uint8Array(32).fill(5);
  const old = encodeRecord({ size: 3, mtime: 7, etag, map: EMPTY_MAP, meta: null });
  assert.equal(old.length, 48 + 2, "no blob: the pre-blob layout, byte for byte");
  assert.equal(decodeRecord(old).meta, null);
  const withMeta = encodeRecord({ size: 3, mtime: 7, etag, map: EMPTY_MAP, meta: META });
  const back = decodeRecord(withMeta);
  assert.deepEqual(back.meta, META);
  assert.equal(back.size, 3);
  assert.throws(() => decodeRecord(withMeta.subarray(0, withMeta.length - 1)), /does not fill/);
});

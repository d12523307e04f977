/**
 * `refsync verify` and ETags of two definitions: an object committed by an
 * older release carries the plain BLAKE3 of its bytes (its ETag before the
 * derived one, src/storage/objects/etag.ts); verify accepts that and the
 * derived ETag, and reports an ETag that is neither.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Flag, Op } from "../../src/protocol/log-frame/mod.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { verifyVolume } from "../../src/storage/verify.ts";
import { blake3Hex, etagHex, Prng, withTempDir } from "./helpers.ts";
import { STORE_OPTS } from "./store_model.ts";

/**
 * Logs a two-record PUT of `data` under `key` as an older source did: plain
 * payload digests, and a COMMIT whose payload is `etag`; replayed at the next open.
 */
async function logOldPut(store: ObjectStore, key: string, data: Uint8Array, etag: Uint8Array) {
  const half = 1 << 20;
  const first = store.log.write([{
    fields: { op: Op.WRITE, key, offset: 0 },
    payload: data.subarray(0, half),
  }]);
  const txn = first.records[0].lsn;
  const rest = store.log.write([
    { fields: { op: Op.WRITE, key, txn, offset: half }, payload: data.subarray(half) },
    {
      fields: { op: Op.COMMIT, key, txn, flags: Flag.REPLACE, offset: data.length },
      payload: etag,
    },
  ]);
  await Promise.all([first.durable, rest.durable]);
}

Deno.test("verify: a plain-BLAKE3 ETag of an older release passes, and so does the derived one", async () => {
  await withTempDir(async (dir) => {
    const rng = new Prng(31);
    const old = rng.bytes((1 << 20) + 5000);
    const wrong = rng.bytes((1 << 20) + 5000);
    let store = await ObjectStore.open(dir, STORE_OPTS);
    await store.write("new", ReadableStream.from([rng.bytes(9000)]), { replace: true, offset: 0 });
    await logOldPut(store, "old", old, Uint8Array.fromHex(blake3Hex(old)));
    await logOldPut(store, "wrong", wrong, Uint8Array.fromHex(etagHex(old)));
    await store.close(); // no CP: the next open replays the log
    store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      assert.equal(store.stat("old")!.etag, blake3Hex(old), "the COMMIT's ETag, as it was sent");
      await store.checkpoint();
    } finally {
      await store.close();
    }
    const report = await verifyVolume(dir);
    assert.deepEqual(report.errors, ["'wrong': bytes do not hash to the stored ETag"]);
    assert.equal(report.objects, 3);
  });
});

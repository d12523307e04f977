/**
 * A write is acknowledged only at or below the durable LSN on both sides:
 * asserted when the write resolves, against the log and the mirror's
 * confirmed LSN (`StoreOptions.mirrorAckedLsn`). A mirror hook that resolves
 * before its destination confirmed is a bug the assertion reports (an
 * internal error), never an acknowledgement.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AssertionError } from "../../../src/assert.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { bytesStream, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

Deno.test("acknowledge: a write resolves once the mirror confirmed its LSN", async () => {
  await withTempDir(async (dir) => {
    let confirmed = 0;
    const store = await ObjectStore.open(dir, {
      ...STORE_OPTS,
      replicate: (written) => {
        confirmed = written[written.length - 1].lsn;
        return Promise.resolve(true);
      },
      mirrorAckedLsn: () => confirmed,
    });
    try {
      const put = await store.write("a", bytesStream(new Uint8Array(10)), {
        replace: true,
        offset: 0,
      });
      assert.equal(put.lsn, 1);
      assert.equal(put.mirrored, true);
      assert.deepEqual(await store.delete("a"), { lsn: 2, mirrored: true });
    } finally {
      await store.close();
    }
  });
});

Deno.test("acknowledge: a mirror hook that resolves before the mirror confirmed is a broken invariant", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, {
      ...STORE_OPTS,
      replicate: () => Promise.resolve(true), // claims the records are mirrored...
      mirrorAckedLsn: () => 0, // ... but the mirror confirmed nothing
    });
    try {
      const refused = (e: unknown) =>
        e instanceof AssertionError &&
        /acknowledging LSN 1 as mirrored; the mirror confirmed 0/.test(e.message);
      await assert.rejects(
        () => store.write("a", bytesStream(new Uint8Array(10)), { replace: true, offset: 0 }),
        refused,
      );
      await assert.rejects(
        () => store.delete("a"),
        /acknowledging LSN 2 as mirrored; the mirror confirmed 0/,
      );
    } finally {
      await store.close();
    }
  });
});

Deno.test("acknowledge: a write the mirror did not hold (available policy) is acknowledged as not mirrored", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, {
      ...STORE_OPTS,
      replicate: () => Promise.resolve(false), // out of sync: acknowledged on local durability
      mirrorAckedLsn: () => 0,
    });
    try {
      const put = await store.write("a", bytesStream(new Uint8Array(10)), {
        replace: true,
        offset: 0,
      });
      assert.equal(put.mirrored, false);
      assert.deepEqual(await store.delete("a"), { lsn: 2, mirrored: false });
    } finally {
      await store.close();
    }
  });
});

Deno.test("acknowledge: without a mirror a write is not mirrored", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      const put = await store.write("a", bytesStream(new Uint8Array(10)), {
        replace: true,
        offset: 0,
      });
      assert.equal(put.mirrored, false);
    } finally {
      await store.close();
    }
  });
});

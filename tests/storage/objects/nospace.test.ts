/**
 * The store on a disk that fills up ({@link FullDisk}: real files behind a
 * byte budget): a CP that runs out of space aborts cleanly and a later one
 * commits; client writes past the space are refused with `no_space` before
 * anything is logged, while DELETEs still go through and the CP after them
 * makes room again; an ENOSPC in the log is `no_space` and leaves nothing
 * visible. Every acknowledged object reads back, also after a reopen.
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { ObjectStore, type StoreOptions } from "../../../src/storage/objects/store.ts";
import { verifyVolume } from "../../../src/storage/verify.ts";
import { FullDisk } from "../../support/faulty-fs.ts";
import { assertBytes, bytesStream, drain, Prng, seeded, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const MiB = 1 << 20;

async function put(store: ObjectStore, key: string, data: Uint8Array): Promise<void> {
  await store.write(key, bytesStream(data), { replace: true, offset: 0, length: data.length });
}

async function assertHolds(store: ObjectStore, objects: Record<string, Uint8Array>, what: string) {
  for (const [key, data] of Object.entries(objects)) {
    assert.equal(store.stat(key)?.size, data.length, `${what}: size of ${key}`);
    assertBytes(await drain(store.read(key, 0, data.length)), data, `${what}: ${key}`);
  }
}

function open(dir: string, disk: FullDisk, extra: Partial<StoreOptions> = {}) {
  return ObjectStore.open(dir, { ...STORE_OPTS, fileOps: disk, ...extra });
}

Deno.test(
  "store: a CP that runs out of space aborts cleanly; a later CP commits",
  seeded(0xd15c, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const objects = { a: rng.bytes(3 * MiB + 5), b: rng.bytes(9000) };
      const disk = new FullDisk();
      const store = await open(dir, disk, { spaceReserve: 0 });
      for (const [k, v] of Object.entries(objects)) await put(store, k, v);

      disk.budget = 64 << 10; // the CP's blocks do not fit
      await assert.rejects(store.checkpoint(), (e) => isError(e, "no_space"));
      assert.ok(disk.failures > 0);
      assert.equal(store.superblock.cp, 0, "the committed CP is untouched");
      assert.equal(store.dirtyBytes, 3 * MiB + 5 + 9000, "the writes are dirty again");
      await assertHolds(store, objects, "after the failed CP");

      disk.budget = Infinity;
      const cp = await store.checkpoint();
      assert.equal(cp?.superblock.cp, 1);
      assert.equal(store.dirtyBytes, 0);
      await assertHolds(store, objects, "after the CP");
      await store.close();

      const again = await open(dir, new FullDisk());
      await assertHolds(again, objects, "after a reopen");
      await again.close();
      const report = await verifyVolume(dir);
      assert.ok(report.ok, report.errors.join("; "));
    });
  }),
);

Deno.test(
  "store: writes past the space get no_space; a DELETE and its CP make room again",
  seeded(0xf011, async (seed) => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const disk = new FullDisk();
      const store = await open(dir, disk, { spaceReserve: MiB });
      const a = rng.bytes(4 * MiB);
      const b = rng.bytes(4 * MiB);
      const c = rng.bytes(MiB);
      await put(store, "a", a);
      await put(store, "b", b);
      await store.checkpoint();

      // 2.5 MiB left: c (1 MiB in the log, 1 MiB more at its CP) would eat into the 1 MiB reserve.
      disk.budget = 2.5 * MiB;
      const before = store.log.lastLsn;
      await assert.rejects(
        put(store, "c", c),
        (e) => isError(e, "no_space") && /reserve/.test(e.message),
      );
      assert.equal(store.stat("c"), null, "a refused write is not visible");
      assert.equal(store.log.lastLsn, before, "a refused write is not logged");
      assert.equal(disk.failures, 0, "refused before the disk ran out");

      // A DELETE needs no room; the CP after it frees a's blocks for c.
      assert.ok(await store.delete("a"));
      await put(store, "c", c);
      assert.equal(disk.failures, 0);
      await store.checkpoint();
      await assertHolds(store, { b, c }, "after the delete and the CP");
      await store.close();

      const again = await open(dir, new FullDisk());
      assert.equal(again.stat("a"), null);
      await assertHolds(again, { b, c }, "after a reopen");
      await again.close();
    });
  }),
);

/** A disk whose free space is unknown (no statfs): only ENOSPC tells. */
class NoStatfs extends FullDisk {
  override availableBytes(): number {
    return Infinity;
  }
}

Deno.test(
  "store: ENOSPC in the log is no_space and leaves nothing visible",
  seeded(7, async (seed) => {
    await withTempDir(async (dir) => {
      const disk = new NoStatfs();
      const store = await open(dir, disk);
      const data = new Prng(seed).bytes(3000);
      disk.budget = 1000;
      await assert.rejects(put(store, "x", data), (e) => isError(e, "no_space"));
      assert.equal(store.stat("x"), null);
      disk.budget = Infinity;
      await put(store, "x", data);
      await store.close();

      const again = await open(dir, new FullDisk());
      assert.equal(again.log.recovery.dropped, undefined);
      await assertHolds(again, { x: data }, "after a reopen");
      await again.close();
    });
  }),
);

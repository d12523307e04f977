/**
 * Deferred CP syncs (`StoreOptions.syncCheckpoint` resolving "deferred"): the
 * CP stays committed here, its sync is not retried, and the blocks it (and
 * every later CP) released stay in use until `mirrorCaughtUp` names a CP the
 * destination holds: the destination's committed image is never overwritten
 * while it may still need it (invariant 2). A synced CP frees them at once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ObjectStore, type SyncOutcome } from "../../../src/storage/objects/store.ts";
import { bytesStream, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

/** A store whose mirror answers each CP sync with `outcome()`; the CPs it was asked to sync. */
async function withStore(
  outcome: () => SyncOutcome,
  fn: (store: ObjectStore, asked: number[]) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const asked: number[] = [];
    const store = await ObjectStore.open(dir, {
      ...STORE_OPTS,
      syncCheckpoint: (cp) => {
        asked.push(cp.superblock.cp);
        return Promise.resolve(outcome());
      },
    });
    try {
      await fn(store, asked);
    } finally {
      await store.close();
    }
  });
}

/** Writes `key` with 3 blocks of `fill`, and takes a CP; its released blocks. */
async function cpWith(store: ObjectStore, key: string, fill: number): Promise<number[]> {
  const body = bytesStream(new Uint8Array(3 * 4096).fill(fill));
  await store.write(key, body, { replace: true, offset: 0 });
  const result = await store.checkpoint();
  assert.ok(result);
  return result.released;
}

Deno.test("deferred CP: what it released stays in use until the mirror caught up, and its sync is not retried", async () => {
  let outcome: SyncOutcome = "synced";
  await withStore(() => outcome, async (store, asked) => {
    await cpWith(store, "a", 1); // CP 1, on both sides
    outcome = "deferred"; // the destination is away
    const released2 = await cpWith(store, "a", 2); // CP 2 replaces a's blocks
    assert.ok(released2.length >= 3, `CP 2 released ${released2}`);
    const released3 = await cpWith(store, "a", 3); // CP 3 replaces CP 2's
    assert.equal(store.superblock.cp, 3, "deferred CPs commit here");
    assert.equal(store.needsSync, false, "a deferred CP is not owed");
    assert.deepEqual(asked, [1, 2, 3], "each CP asked once: no deferred sync retried");
    for (const b of [...released2, ...released3]) {
      assert.ok(store.volume.isLive(b), `block ${b} released while the destination is away`);
    }
    // The destination committed CP 2 (say, a resync brought it there).
    store.mirrorCaughtUp(2);
    for (const b of released2) assert.ok(!store.volume.isLive(b), `block ${b} freed`);
    for (const b of released3) assert.ok(store.volume.isLive(b), `block ${b} kept for CP 3`);
    store.mirrorCaughtUp(3);
    for (const b of released3) assert.ok(!store.volume.isLive(b), `block ${b} freed`);
  });
});

Deno.test("synced CP: what it released is freed at once", async () => {
  await withStore(() => "synced", async (store) => {
    await cpWith(store, "a", 1);
    const released = await cpWith(store, "a", 2);
    for (const b of released) assert.ok(!store.volume.isLive(b), `block ${b} freed`);
  });
});

Deno.test("a synced CP after deferred ones frees what all of them released", async () => {
  let outcome: SyncOutcome = "deferred";
  await withStore(() => outcome, async (store) => {
    await cpWith(store, "a", 1);
    const released = [...await cpWith(store, "a", 2), ...await cpWith(store, "b", 3)];
    outcome = "synced"; // the destination is back (one CP behind: the next sync brings it along)
    released.push(...await cpWith(store, "a", 4));
    for (const b of released) assert.ok(!store.volume.isLive(b), `block ${b} freed`);
  });
});

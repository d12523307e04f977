/**
 * The source's verify merge (`src/edge-source/mirror/verify.ts`) against a
 * destination played by a fake client: the two block-ordered lists merged as
 * they stream, each kind of difference named (`differs`, `damaged`,
 * `missing`, `extra`) with its key, a block damaged on the source reported in
 * `sourceDamaged` and never sent, and `repair` sending exactly the source's
 * bytes of the blocks it can mend, in batches.
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { MAX_REPORTED, verifyPair } from "../../../src/edge-source/mirror/verify.ts";
import type { ReplicaClient } from "../../../src/edge-source/mirror/replica-client.ts";
import { silentLogger } from "../../../src/logging/mod.ts";
import { inSyncState } from "./fake-dest.ts";
import {
  decodeRepair,
  type DigestRecord,
  digestStream,
  readDigestStream,
  REPAIR_BATCH_BLOCKS,
} from "../../../src/protocol/verify/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { damageFileBlock as damage } from "../../support/datadir.ts";
import {
  bytesStream,
  digestsOf,
  keysOf,
  Prng,
  seeded,
  withTempDir,
} from "../../storage/helpers.ts";
import { STORE_OPTS } from "../../storage/store_model.ts";

/** A destination that lists `records` for the store's CP and takes every repair. */
function fakeDest(store: ObjectStore, records: DigestRecord[]) {
  const sent: Array<{ block: number; bytes: Uint8Array }[]> = [];
  const sb = store.superblock;
  const state = inSyncState(store, sb.lsnCovered);
  const client: ReplicaClient = {
    url: "http://dest.fake",
    state: () => Promise.resolve(state),
    resetLog: () => Promise.reject(new Error("not used")),
    sendFrames: () => Promise.reject(new Error("not used")),
    sendCpPart: () => Promise.reject(new Error("not used")),
    beginCatchUp: () => Promise.reject(new Error("not used")),
    sendCatchUpPart: () => Promise.reject(new Error("not used")),
    verifyDigests: (cp) =>
      readDigestStream(digestStream({ cp, volumeDigest: sb.volumeDigest }, records, () => {}, 3)),
    repair: (_cp, bytes) => {
      const batch = decodeRepair(bytes);
      sent.push(batch);
      return Promise.resolve({ repaired: batch.map((r) => r.block), refused: [] });
    },
  };
  return { client, sent, state };
}

Deno.test(
  "verify merge: each kind of difference named with its key; repair sends only what the destination can check",
  seeded(0x3e26, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const objects = { a: rng.bytes(40_000), b: rng.bytes(300_000), c: rng.bytes(9000) };
      let store = await ObjectStore.open(dir, STORE_OPTS);
      for (const [key, bytes] of Object.entries(objects)) {
        await store.write(key, bytesStream(bytes), { replace: true, offset: 0 });
      }
      await store.checkpoint();
      const clean = digestsOf(store);
      await store.close();
      const srcBad = damage(dir, objects.c, 1);
      store = await ObjectStore.open(dir, { ...STORE_OPTS, logger: silentLogger });
      try {
        const keys = keysOf(store, clean.map((d) => d.block));
        const dataOf = (key: string) => clean.filter((d) => keys.get(d.block) === key);
        const differs = dataOf("a")[2].block;
        const missing = dataOf("b")[5].block;
        const damaged = dataOf("b")[40].block;
        const extra = clean.at(-1)!.block + 10;
        const dest: DigestRecord[] = clean
          .filter((d) => d.block !== missing)
          .map((d) =>
            d.block === differs
              ? { ...d, digest: new Uint8Array(16) }
              : d.block === damaged
              ? { ...d, damaged: true, digest: new Uint8Array(16).fill(9) }
              : d
          );
        dest.push({ block: extra, digest: new Uint8Array(16), damaged: false });

        const look = fakeDest(store, dest);
        const found = await verifyPair({
          store,
          client: look.client,
          repair: false,
          logger: silentLogger,
        });
        const want = [
          { block: differs, key: "a", kind: "differs" },
          { block: missing, key: "b", kind: "missing" },
          { block: damaged, key: "b", kind: "damaged" },
          { block: extra, kind: "extra" },
        ].sort((x, y) => x.block - y.block);
        assert.deepEqual(
          { ...found, durationMs: 0 },
          {
            cp: store.superblock.cp,
            blocksCompared: clean.length + 1,
            mismatches: want,
            mismatchCount: 4,
            repaired: 0,
            sourceDamaged: [{ block: srcBad, key: "c" }],
            durationMs: 0,
          },
        );
        assert.deepEqual(look.sent, [], "nothing is sent without repair");

        const fix = fakeDest(store, dest);
        const mended = await verifyPair({
          store,
          client: fix.client,
          repair: true,
          logger: silentLogger,
        });
        assert.equal(mended.repaired, 2);
        const sent = fix.sent.flat();
        // Not the missing one: the destination cannot check it until the block above it is mended.
        assert.deepEqual(sent.map((r) => r.block), [differs, damaged].sort((x, y) => x - y));
        for (const r of sent) assert.deepEqual(r.bytes, store.volume.readBlock(r.block));
        assert.ok(!sent.some((r) => r.block === srcBad), "a block damaged here is never sent");
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "verify merge: a destination that differs everywhere is repaired in bounded batches; the report is capped",
  seeded(0x3e27, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const store = await ObjectStore.open(dir, STORE_OPTS);
      try {
        await store.write("big", bytesStream(rng.bytes(5 << 20)), { replace: true, offset: 0 });
        await store.checkpoint();
        const all = digestsOf(store).map((d) => ({ ...d, digest: new Uint8Array(16) }));
        const fix = fakeDest(store, all);
        const r = await verifyPair({
          store,
          client: fix.client,
          repair: true,
          logger: silentLogger,
        });
        assert.equal(r.mismatchCount, all.length);
        assert.equal(r.mismatches.length, MAX_REPORTED);
        assert.equal(r.repaired, all.length);
        assert.ok(fix.sent.every((b) => b.length <= REPAIR_BATCH_BLOCKS));
        assert.equal(fix.sent.length, Math.ceil(all.length / REPAIR_BATCH_BLOCKS));
        // A destination at a CP this source no longer holds: no CP to compare, said so.
        fix.state.cp = store.superblock.cp + 3;
        await assert.rejects(
          verifyPair({ store, client: fix.client, repair: false, logger: silentLogger }),
          (e) =>
            isError(e, "conflict") &&
            /the destination is at CP \d+, this source at CP/.test(e.message),
        );
      } finally {
        await store.close();
      }
    });
  }),
);

/**
 * The CP sync applier tells the sender's mistakes from its own failures: a
 * malformed stream or a reference to a live block is the source's fault
 * (a domain error), a failing disk is an internal error that must never be
 * answered as a bad request.
 *
 * @module
 */
import assert from "node:assert/strict";
import { applyCpSync } from "../../src/edge-dest/cp-apply.ts";
import { RefsyncError } from "../../src/errors/mod.ts";
import { type CpRecord, encodeRecord } from "../../src/protocol/cp-sync/records.ts";
import { newWireStats } from "../../src/protocol/cp-sync/stats.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { cpContentDigest, nextVolumeDigest } from "../../src/storage/volume/digest.ts";
import { encodeSuperblock } from "../../src/storage/volume/superblock.ts";
import { WrittenBlocks } from "../../src/storage/volume/written.ts";
import { withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 20, maxObjectBytes: 1 << 30, mirror: true };

function stream(records: CpRecord[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(records.map(encodeRecord));
}

function begin(store: ObjectStore): Extract<CpRecord, { kind: "begin" }> {
  const sb = store.superblock;
  return {
    kind: "begin",
    cp: sb.cp + 1,
    pairGeneration: sb.pairGeneration,
    volumeId: sb.volumeId,
    previousDigest: sb.volumeDigest,
  };
}

Deno.test("cp-apply: a disk that fails mid-apply is an internal error, not the sender's", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, OPTS);
    const records: CpRecord[] = [
      begin(store),
      // The base (superblock slot 1) is live, so it is read from the volume file.
      { kind: "diff", block: 5, base: 1, check: new Uint8Array(16), ranges: [] },
    ];
    store.volume.close(); // every read of the file now fails (EBADF)
    try {
      await assert.rejects(
        () => applyCpSync(store, stream(records), newWireStats()),
        (e: unknown) => !(e instanceof RefsyncError),
      );
    } finally {
      // The volume is closed already (that close fails); the rest is released.
      await store.close().catch(() => {});
    }
  });
});

Deno.test("cp-apply: a truncated stream and a write over a live block are the sender's fault", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, OPTS);
    try {
      const cut = encodeRecord(begin(store)).subarray(0, 20);
      await assert.rejects(
        () => applyCpSync(store, ReadableStream.from([cut]), newWireStats()),
        (e: unknown) => e instanceof RefsyncError && e.code === "bad_request",
      );
      const live = stream([begin(store), {
        kind: "data",
        block: 1,
        bytes: new Uint8Array(4096),
      }]);
      await assert.rejects(
        () => applyCpSync(store, live, newWireStats()),
        (e: unknown) =>
          e instanceof RefsyncError && e.code === "conflict" &&
          /block 1, which is live/.test(e.message),
      );
    } finally {
      await store.close();
    }
  });
});

/** An empty CP sync from a source of volume `volumeId` (no block changes). */
function emptyCp(store: ObjectStore, volumeId: Uint8Array): CpRecord[] {
  const sb = { ...store.superblock, volumeId, cp: store.superblock.cp + 1 };
  const volumeDigest = nextVolumeDigest(
    store.superblock.volumeDigest,
    cpContentDigest(new WrittenBlocks()),
    sb,
  );
  return [
    { ...begin(store), volumeId },
    { kind: "commit", superblock: encodeSuperblock({ ...sb, volumeDigest }) },
  ];
}

Deno.test("cp-apply: BEGIN of another volume is refused once the destination has a CP", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, OPTS);
    try {
      const source = new Uint8Array(16).fill(0x5a);
      // The first CP makes the destination its source's volume.
      const first = await applyCpSync(store, stream(emptyCp(store, source)), newWireStats());
      assert.equal(first.committed, true);
      assert.deepEqual(store.superblock.volumeId, source);
      const other = new Uint8Array(16).fill(0x77);
      await assert.rejects(
        () => applyCpSync(store, stream(emptyCp(store, other)), newWireStats()),
        (e: unknown) =>
          e instanceof RefsyncError && e.code === "conflict" &&
          /CP sync of volume 7777.*holds volume 5a5a/.test(e.message),
      );
      // A COMMIT that contradicts its BEGIN is refused too.
      const [begun] = emptyCp(store, source);
      const lying = encodeSuperblock({
        ...store.superblock,
        cp: 2,
        pairGeneration: store.superblock.pairGeneration + 1,
      });
      await assert.rejects(
        () =>
          applyCpSync(
            store,
            stream([begun, { kind: "commit", superblock: lying }]),
            newWireStats(),
          ),
        (e: unknown) =>
          e instanceof RefsyncError && e.code === "bad_request" && /than its BEGIN/.test(e.message),
      );
      assert.equal(store.superblock.cp, 1, "nothing more committed");
    } finally {
      await store.close();
    }
  });
});

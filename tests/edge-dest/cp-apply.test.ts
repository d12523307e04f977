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
import { withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 20, maxObjectBytes: 1 << 30, mirror: true };

function stream(records: CpRecord[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(records.map(encodeRecord));
}

function begin(store: ObjectStore): CpRecord {
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

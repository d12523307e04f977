/**
 * Abandoned multipart uploads expire: the sweeper drops an upload older than
 * the age (its marker and parts), keeps a younger one, removes parts whose
 * upload is gone, and goes on where it stopped when its budget ran out.
 * In process: a store, the S3 server on 127.0.0.1 port 0, the SDK.
 */
import assert from "node:assert/strict";
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListPartsCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { silentLogger } from "../../src/logging/mod.ts";
import { UploadSweeper } from "../../src/s3/multipart.ts";
import { startS3Server } from "../../src/s3/server.ts";
import { RESERVED_PREFIX } from "../../src/storage/objects/key.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { withTempDir } from "../support/appliance.ts";
import { CREDS, sdkClient } from "./helpers.ts";

Deno.test("s3 multipart: abandoned uploads expire, bounded per sweep", async () => {
  await withTempDir("refsync-s3-expiry-", async (dir) => {
    const store = await ObjectStore.open(dir, { cpDirtyBytes: 64 << 20, maxObjectBytes: 64 << 20 });
    const server = startS3Server({
      host: "127.0.0.1",
      port: 0,
      store,
      maxObjectBytes: 64 << 20,
      credentials: CREDS,
      admitWrite: () => Promise.resolve(),
      logger: silentLogger,
    });
    const s3 = sdkClient(server.url);
    try {
      const Bucket = "exp";
      await s3.send(new CreateBucketCommand({ Bucket }));
      const ids: string[] = [];
      for (const Key of ["a", "b"]) {
        const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
        for (const PartNumber of [1, 2]) {
          await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: "part" }));
        }
        ids.push(UploadId!);
      }
      const internal = () => store.list({ prefix: RESERVED_PREFIX, limit: 100 }).objects.length;
      assert.equal(internal(), 1 + 2 * 3, "a bucket marker, two upload markers, four parts");
      const sweeper = new UploadSweeper(store, 60_000);
      assert.equal(await sweeper.sweep(10), 0, "nothing is old enough yet");
      // An hour later, with a budget of one upload per sweep: one upload each time.
      const later = Date.now() + 3600_000;
      assert.equal(await sweeper.sweep(1, later), 3, "the first upload: marker and two parts");
      assert.equal(await sweeper.sweep(1, later), 3, "the second, where the first sweep stopped");
      for (const [i, Key] of ["a", "b"].entries()) {
        await assert.rejects(
          s3.send(new ListPartsCommand({ Bucket, Key, UploadId: ids[i] })),
          (e: Error) => e.name === "NoSuchUpload",
        );
      }
      assert.equal(internal(), 1, "only the bucket marker is left");
      // A part whose upload marker is gone (a crash mid-completion) is swept too.
      const orphan = `${RESERVED_PREFIX}s3/part/${Bucket}/${"0".repeat(32)}/00001`;
      await store.write(orphan, ReadableStream.from([new Uint8Array(3)]), {
        replace: true,
        offset: 0,
      });
      let swept = 0;
      for (let i = 0; i < 3 && store.stat(orphan) !== null; i++) swept += await sweeper.sweep(10);
      assert.equal(swept, 1);
      assert.equal(store.stat(orphan), null);
    } finally {
      s3.destroy();
      await server.close();
      await store.close();
    }
  });
});

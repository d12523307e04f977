/**
 * A stalled S3 body is cut as a native one is: a PUT or UploadPart that stops
 * sending for `--body-idle-timeout` gets `RequestTimeout` (400, S3 XML) and
 * applies nothing, instead of holding its writer, its log transaction and the
 * space it claimed for ever.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { spawnSource, withTempDir } from "../support/appliance.ts";
import { rawExchange } from "../support/http.ts";
import { S3_ARGS, sdkClient, signed } from "./helpers.ts";

const IDLE_MS = 500;
const MiB = 1 << 20;

Deno.test("s3: a PUT body that stalls past --body-idle-timeout is RequestTimeout, nothing applied", async () => {
  await withTempDir("refsync-s3-stall-", async (dir) => {
    const src = await spawnSource(dir, [...S3_ARGS, "--body-idle-timeout", String(IDLE_MS)]);
    const s3 = sdkClient(src.s3Url!);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "stall-bucket" }));
      const kept = new Uint8Array(3 * MiB).fill(5);
      await s3.send(new PutObjectCommand({ Bucket: "stall-bucket", Key: "kept", Body: kept }));
      const port = Number(new URL(src.s3Url!).port);
      // A new object stalled after 3 bytes; an overwrite stalled after 1.5 MiB (a transaction).
      for (const [key, sent] of [["small", 3], ["kept", 1.5 * MiB]] as const) {
        const url = `${src.s3Url}/stall-bucket/${key}`;
        const headers = await signed(url, "PUT", {
          "content-length": String(3 * MiB),
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        });
        const head = `PUT /stall-bucket/${key} HTTP/1.1\r\n` +
          [...headers].map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
        const h8 = new TextEncoder().encode(head);
        const bytes = new Uint8Array(h8.length + sent);
        bytes.set(h8);
        const started = performance.now();
        const a = await rawExchange(port, bytes, 20 * IDLE_MS);
        const took = performance.now() - started;
        assert.equal(a.status, 400, `${key}: ${a.text.slice(0, 400)}`);
        assert.match(a.text, /<Code>RequestTimeout<\/Code>/, key);
        assert.ok(took >= IDLE_MS * 0.9, `${key}: cut after ${took} ms, before the bound`);
      }
      await assert.rejects(
        s3.send(new HeadObjectCommand({ Bucket: "stall-bucket", Key: "small" })),
        (e: Error) => e.name === "NotFound",
      );
      const got = await s3.send(new HeadObjectCommand({ Bucket: "stall-bucket", Key: "kept" }));
      assert.equal(got.ContentLength, kept.length, "'kept' unchanged");
    } finally {
      s3.destroy();
      await src.kill();
    }
  });
});

/**
 * `Refsync-Mirror` on every acknowledged write, on both faces (real
 * processes, `--sync-policy available`): `in-sync` while the destination
 * holds the writes, `out-of-sync` while it is down (SIGKILL) — native PUT,
 * ranged PUT and DELETE; S3 PutObject, DeleteObject, UploadPart and
 * CompleteMultipartUpload. A source without a destination sends none.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { spawnAppliance, withTempDir } from "../support/appliance.ts";
import { objectUrl, putObject, putRange } from "../support/http.ts";
import { S3_ARGS, sdkClient } from "../s3/helpers.ts";
import { call, spawnPair, stopAll } from "./pair.ts";

const MiB = 1024 * 1024;

/** The `Refsync-Mirror` header of each S3 answer, in order (lower-cased by the SDK). */
function recordMirrorHeaders(s3: S3Client): Array<string | undefined> {
  const seen: Array<string | undefined> = [];
  s3.middlewareStack.add((next) => async (args) => {
    const out = await next(args);
    const headers = (out.response as { headers: Record<string, string> }).headers;
    seen.push(headers["refsync-mirror"]);
    return out;
  }, { step: "deserialize", name: "recordMirrorHeader" });
  return seen;
}

/** Every write kind of both faces; the header each answered with. */
async function writeEverything(
  srcUrl: string,
  s3: S3Client,
  seen: Array<string | undefined>,
  tag: string,
): Promise<Record<string, string | null | undefined>> {
  const out: Record<string, string | null | undefined> = {};
  const put = await putObject(srcUrl, `${tag}/n`, "native body");
  assert.ok(put.status === 201, `native PUT: ${put.status}`);
  out.put = put.headers.get("Refsync-Mirror");
  const ranged = await putRange(srcUrl, `${tag}/n`, 3, new TextEncoder().encode("RANGE"));
  assert.equal(ranged.status, 200);
  out.rangedPut = ranged.headers.get("Refsync-Mirror");
  const del = await call(objectUrl(srcUrl, `${tag}/n`), { method: "DELETE" });
  assert.equal(del.status, 204);
  out.delete = del.headers.get("Refsync-Mirror");

  const Bucket = "hdr";
  const Key = `${tag}/s3`;
  seen.length = 0;
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: new Uint8Array(1000) }));
  out.PutObject = seen.pop();
  await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  out.DeleteObject = seen.pop();
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const part1 = await s3.send(
    new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: new Uint8Array(5 * MiB) }),
  );
  out.UploadPart = seen.pop();
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key,
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part1.ETag }] },
    }),
  );
  out.CompleteMultipartUpload = seen.pop();
  return out;
}

const KINDS = [
  "put",
  "rangedPut",
  "delete",
  "PutObject",
  "DeleteObject",
  "UploadPart",
  "CompleteMultipartUpload",
];

Deno.test("Refsync-Mirror: in-sync while mirrored, out-of-sync during an outage, on both faces", async () => {
  await withTempDir("refsync-mirror-header-", async (dir) => {
    const args = [...S3_ARGS, "--cp-interval", "0"];
    const pair = await spawnPair(dir, {
      sourceArgs: [...args, "--sync-policy", "available", "--sync-timeout", "1000"],
      destArgs: args,
    });
    const s3 = sdkClient(pair.src.s3Url!);
    const seen = recordMirrorHeaders(s3);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "hdr" }));
      const inSync = await writeEverything(pair.src.url, s3, seen, "up");
      assert.deepEqual(inSync, Object.fromEntries(KINDS.map((k) => [k, "in-sync"])));
      await pair.dst.kill();
      const outage = await writeEverything(pair.src.url, s3, seen, "down");
      assert.deepEqual(outage, Object.fromEntries(KINDS.map((k) => [k, "out-of-sync"])));
    } finally {
      s3.destroy();
      await stopAll(pair.src, pair.dst);
    }
  });
});

Deno.test("Refsync-Mirror: a source without a destination sends none", async () => {
  await withTempDir("refsync-mirror-header-local-", async (dir) => {
    const src = await spawnAppliance({ role: "source", dataDir: `${dir}/source`, args: [] });
    try {
      const put = await putObject(src.url, "k", "body");
      assert.equal(put.status, 201);
      assert.equal(put.headers.get("Refsync-Mirror"), null);
    } finally {
      await stopAll(src);
    }
  });
});

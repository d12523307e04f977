/**
 * The S3 face with `@aws-sdk/client-s3` (and raw signed requests where the
 * SDK cannot be made to send what is tested) against a real pair: multipart
 * uploads (ETag, ListParts, ListMultipartUploads, Abort, a too-small part),
 * presigned URLs, delimiters, copy, batch delete, a wrong secret, payload
 * checks (Content-MD5, checksum headers and trailers, signed aws-chunked
 * chunks) that refuse a body without storing anything, and the destination
 * serving its last CP and refusing writes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { chunkSignature, sha256Hex } from "../../src/s3/sigv4.ts";
import { adminCp, call } from "../mirror/pair.ts";
import { withTempDir } from "../support/appliance.ts";
import { CREDS, sdkClient, signed, spawnS3Pair } from "./helpers.ts";
import { signingKey } from "./signing-key.ts";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";

const MiB = 1 << 20;

function client(endpoint: string, secretKey = CREDS.secretKey): S3Client {
  return sdkClient(endpoint, { ...CREDS, secretKey });
}

function bytesOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

function md5Hex(...parts: Uint8Array[]): string {
  const h = createHash("md5");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/** The S3 error code and status a call failed with. */
async function failure(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof S3ServiceException) {
      return { code: e.name, status: e.$metadata.httpStatusCode ?? 0 };
    }
    throw e;
  }
  throw new Error("the call succeeded");
}

Deno.test("s3 sdk: multipart, presign, listings, copy, batch delete, checks, destination", async (t) => {
  await withTempDir("refsync-s3-sdk-", async (dir) => {
    const pair = await spawnS3Pair(dir);
    const s3 = client(pair.src.s3Url!);
    const dst = client(pair.dst.s3Url!);
    const wrong = client(pair.src.s3Url!, "not-the-secret");
    const Bucket = "sdk-bucket";
    try {
      await s3.send(new CreateBucketCommand({ Bucket }));

      await t.step(
        "multipart: parts, ListParts, ListMultipartUploads, complete, S3 ETag",
        async () => {
          const p1 = bytesOf(5 * MiB, 1);
          const p2 = bytesOf(MiB + 7, 2);
          const { UploadId } = await s3.send(
            new CreateMultipartUploadCommand({
              Bucket,
              Key: "mp/obj",
              ContentType: "application/x-test",
            }),
          );
          assert.ok(UploadId);
          const e1 = await s3.send(
            new UploadPartCommand({ Bucket, Key: "mp/obj", UploadId, PartNumber: 1, Body: p1 }),
          );
          const e2 = await s3.send(
            new UploadPartCommand({ Bucket, Key: "mp/obj", UploadId, PartNumber: 2, Body: p2 }),
          );
          assert.equal(e1.ETag, `"${md5Hex(p1)}"`);
          const parts = await s3.send(new ListPartsCommand({ Bucket, Key: "mp/obj", UploadId }));
          assert.deepEqual(parts.Parts?.map((p) => [p.PartNumber, p.Size]), [[1, p1.length], [
            2,
            p2.length,
          ]]);
          const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket }));
          assert.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [[
            "mp/obj",
            UploadId,
          ]]);
          // Parts are hidden objects: neither listing shows them.
          const listed = await s3.send(new ListObjectsV2Command({ Bucket }));
          assert.equal(listed.KeyCount, 0);
          const native = await call(`${pair.src.url}/v1/objects`);
          assert.deepEqual(JSON.parse(native.text).objects, []);
          const done = await s3.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key: "mp/obj",
              UploadId,
              MultipartUpload: {
                Parts: [{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.ETag }],
              },
            }),
          );
          const want = `"${md5Hex(new Uint8Array(Buffer.from(md5Hex(p1) + md5Hex(p2), "hex")))}-2"`;
          assert.equal(done.ETag, want);
          const got = await s3.send(new GetObjectCommand({ Bucket, Key: "mp/obj" }));
          assert.equal(got.ETag, want);
          assert.equal(got.ContentType, "application/x-test");
          const body = await got.Body!.transformToByteArray();
          assert.equal(md5Hex(body), md5Hex(p1, p2));
          assert.equal(
            (await s3.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads,
            undefined,
          );
          assert.deepEqual(
            JSON.parse((await call(`${pair.src.url}/v1/objects`)).text).objects.map((
              o: { key: string },
            ) => o.key),
            [`${Bucket}/mp/obj`],
          );
        },
      );

      await t.step(
        "multipart: a small part but the last is refused; abort drops the upload",
        async () => {
          const { UploadId } = await s3.send(
            new CreateMultipartUploadCommand({ Bucket, Key: "mp/small" }),
          );
          const e1 = await s3.send(
            new UploadPartCommand({
              Bucket,
              Key: "mp/small",
              UploadId,
              PartNumber: 1,
              Body: bytesOf(1000, 3),
            }),
          );
          const e2 = await s3.send(
            new UploadPartCommand({
              Bucket,
              Key: "mp/small",
              UploadId,
              PartNumber: 2,
              Body: bytesOf(10, 4),
            }),
          );
          const f = await failure(s3.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key: "mp/small",
              UploadId,
              MultipartUpload: {
                Parts: [{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.ETag }],
              },
            }),
          ));
          assert.deepEqual(f, { code: "EntityTooSmall", status: 400 });
          await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: "mp/small", UploadId }));
          const again = await failure(
            s3.send(new ListPartsCommand({ Bucket, Key: "mp/small", UploadId })),
          );
          assert.deepEqual(again, { code: "NoSuchUpload", status: 404 });
          assert.equal(
            (await failure(s3.send(new HeadObjectCommand({ Bucket, Key: "mp/small" })))).status,
            404,
          );
        },
      );

      await t.step("presigned GET and PUT", async () => {
        const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket, Key: "pre/x" }), {
          expiresIn: 60,
        });
        const put = await call(putUrl, { method: "PUT", body: "presigned body" });
        assert.equal(put.status, 200, put.text);
        const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key: "pre/x" }), {
          expiresIn: 60,
        });
        const get = await call(getUrl);
        assert.equal(get.status, 200);
        assert.equal(get.text, "presigned body");
        const tampered = await call(getUrl.replace("pre/x", "pre/y"));
        assert.equal(tampered.status, 403);
        assert.match(tampered.text, /<Code>SignatureDoesNotMatch<\/Code>/);
      });

      await t.step("delimiters, copy, batch delete, a wrong secret", async () => {
        for (const Key of ["t/a/1", "t/a/2", "t/b/1", "t/c", "t/a+b c"]) {
          await s3.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
        }
        const r = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: "t/", Delimiter: "/" }));
        assert.deepEqual(r.CommonPrefixes?.map((p) => p.Prefix), ["t/a/", "t/b/"]);
        assert.deepEqual(r.Contents?.map((c) => c.Key), ["t/a+b c", "t/c"]);
        const paged = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: "t/", MaxKeys: 2 }));
        assert.equal(paged.IsTruncated, true);
        const rest = await s3.send(
          new ListObjectsV2Command({
            Bucket,
            Prefix: "t/",
            ContinuationToken: paged.NextContinuationToken,
          }),
        );
        assert.deepEqual([...paged.Contents!, ...rest.Contents!].map((c) => c.Key), [
          "t/a+b c",
          "t/a/1",
          "t/a/2",
          "t/b/1",
          "t/c",
        ]);
        const copied = await s3.send(
          new CopyObjectCommand({ Bucket, Key: "t/copy", CopySource: `${Bucket}/t/a%2Bb%20c` }),
        );
        assert.equal(
          copied.CopyObjectResult?.ETag,
          `"${md5Hex(new TextEncoder().encode("t/a+b c"))}"`,
        );
        const del = await s3.send(
          new DeleteObjectsCommand({
            Bucket,
            Delete: { Objects: [{ Key: "t/a/1" }, { Key: "t/a/2" }, { Key: "t/none" }] },
          }),
        );
        assert.deepEqual(del.Deleted?.map((d) => d.Key).sort(), ["t/a/1", "t/a/2", "t/none"]);
        const after = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: "t/" }));
        assert.deepEqual(after.Contents?.map((c) => c.Key), ["t/a+b c", "t/b/1", "t/c", "t/copy"]);
        assert.deepEqual(await failure(wrong.send(new ListObjectsV2Command({ Bucket }))), {
          code: "SignatureDoesNotMatch",
          status: 403,
        });
        assert.deepEqual(await failure(s3.send(new DeleteBucketCommand({ Bucket }))), {
          code: "BucketNotEmpty",
          status: 409,
        });
        assert.deepEqual(
          await failure(s3.send(new GetObjectCommand({ Bucket: "no-such-bucket", Key: "k" }))),
          { code: "NoSuchBucket", status: 404 },
        );
      });

      await t.step("payload checks refuse the body and store nothing", async () => {
        const wrongMd5 = await failure(
          s3.send(
            new PutObjectCommand({
              Bucket,
              Key: "chk/md5",
              Body: "abc",
              ContentMD5: Buffer.from(new Uint8Array(16)).toString("base64"),
            }),
          ),
        );
        assert.deepEqual(wrongMd5, { code: "BadDigest", status: 400 });
        const wrongCrc = await failure(
          s3.send(
            new PutObjectCommand({
              Bucket,
              Key: "chk/crc",
              Body: "abc",
              ChecksumCRC32: "AAAAAA==",
            }),
          ),
        );
        assert.deepEqual(wrongCrc, { code: "BadDigest", status: 400 });
        for (const Key of ["chk/md5", "chk/crc"]) {
          assert.equal(
            (await failure(s3.send(new HeadObjectCommand({ Bucket, Key })))).status,
            404,
            Key,
          );
        }
        // A streamed body: the SDK sends it aws-chunked with a checksum trailer.
        const sent: Array<string | undefined> = [];
        s3.middlewareStack.add((next) => (args) => {
          const h = (args.request as { headers: Record<string, string> }).headers;
          sent.push(h["x-amz-content-sha256"] + " " + h["x-amz-trailer"]);
          return next(args);
        }, { step: "finalizeRequest", name: "recordPayloadMode" });
        for (const ChecksumAlgorithm of ["CRC32", "CRC32C", "CRC64NVME", "SHA256"] as const) {
          const data = bytesOf(300_000, 5);
          const Key = `chk/trailer-${ChecksumAlgorithm}`;
          await s3.send(
            new PutObjectCommand({
              Bucket,
              Key,
              Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]),
              ContentLength: data.length,
              ChecksumAlgorithm,
            }),
          );
          const back = await (await s3.send(new GetObjectCommand({ Bucket, Key }))).Body!
            .transformToByteArray();
          assert.equal(md5Hex(back), md5Hex(data), ChecksumAlgorithm);
        }
        s3.middlewareStack.remove("recordPayloadMode");
        assert.deepEqual(sent.filter((m) => m?.startsWith("STREAMING")), [
          "STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-crc32",
          "STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-crc32c",
          "STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-crc64nvme",
          "STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-sha256",
        ]);
        // A trailer that does not match, sent raw.
        const url = `${pair.src.s3Url}/${Bucket}/chk/bad-trailer`;
        const body = "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        const headers = await signed(url, "PUT", {
          "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
          "content-encoding": "aws-chunked",
          "x-amz-decoded-content-length": "5",
          "x-amz-trailer": "x-amz-checksum-crc32",
        });
        const bad = await call(url, { method: "PUT", headers, body });
        assert.equal(bad.status, 400);
        assert.match(bad.text, /<Code>BadDigest<\/Code>/);
        assert.equal(
          (await failure(s3.send(new HeadObjectCommand({ Bucket, Key: "chk/bad-trailer" }))))
            .status,
          404,
        );
      });

      await t.step("signed aws-chunked: every chunk signature checked", async () => {
        const data = bytesOf(150_000, 6);
        const sizes = [65536, 65536, data.length - 131072, 0];
        const send = async (key: string, tamper: boolean) => {
          const url = `${pair.src.s3Url}/${Bucket}/${key}`;
          const encoded = sizes.map((n) =>
            `${n.toString(16)};chunk-signature=`.length + 64 + 2 + n + 2
          ).reduce((a, b) => a + b);
          const headers = await signed(url, "PUT", {
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "content-encoding": "aws-chunked",
            "x-amz-decoded-content-length": String(data.length),
            "content-length": String(encoded),
          });
          const auth = headers.get("authorization")!;
          const seed = /Signature=([0-9a-f]{64})/.exec(auth)![1];
          const amzDate = headers.get("x-amz-date")!;
          const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
          const s = { key: signingKey(CREDS.secretKey, amzDate.slice(0, 8)), amzDate, scope, seed };
          const parts: Uint8Array[] = [];
          let prev = seed;
          let at = 0;
          for (const n of sizes) {
            const chunk = data.slice(at, at + n);
            at += n;
            const sig = chunkSignature(s, prev, sha256Hex(chunk));
            prev = sig;
            if (tamper && n > 0 && at > 65536) chunk[0] ^= 1;
            parts.push(
              new TextEncoder().encode(`${n.toString(16)};chunk-signature=${sig}\r\n`),
              chunk,
              new TextEncoder().encode("\r\n"),
            );
          }
          return await call(url, { method: "PUT", headers, body: new Blob(parts as BlobPart[]) });
        };
        const ok = await send("chunked/ok", false);
        assert.equal(ok.status, 200, ok.text);
        const back = await (await s3.send(new GetObjectCommand({ Bucket, Key: "chunked/ok" })))
          .Body!.transformToByteArray();
        assert.equal(md5Hex(back), md5Hex(data));
        const bad = await send("chunked/bad", true);
        assert.equal(bad.status, 403);
        assert.match(bad.text, /<Code>SignatureDoesNotMatch<\/Code>/);
        assert.equal(
          (await failure(s3.send(new HeadObjectCommand({ Bucket, Key: "chunked/bad" })))).status,
          404,
        );
      });

      await t.step("the destination serves its last CP and refuses writes", async () => {
        await adminCp(pair.src);
        const got = await dst.send(new GetObjectCommand({ Bucket, Key: "mp/obj" }));
        const src = await s3.send(new HeadObjectCommand({ Bucket, Key: "mp/obj" }));
        assert.equal(got.ETag, src.ETag);
        await got.Body!.transformToByteArray();
        assert.deepEqual(
          await failure(dst.send(new PutObjectCommand({ Bucket, Key: "x", Body: "no" }))),
          { code: "AccessDenied", status: 403 },
        );
        assert.deepEqual(await failure(dst.send(new CreateBucketCommand({ Bucket: "another" }))), {
          code: "AccessDenied",
          status: 403,
        });
      });
    } finally {
      s3.destroy();
      dst.destroy();
      wrong.destroy();
      await pair.stop();
    }
  });
});

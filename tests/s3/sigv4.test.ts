/**
 * SigV4 and aws-chunked against the worked examples of AWS's S3 SigV4
 * documentation (GET with a header signature, a presigned GET, a chunked PUT
 * with its seed and chunk signatures), then the refusals: a wrong secret, an
 * unknown key, a skewed clock, an expired URL, a tampered chunk.
 */
import assert from "node:assert/strict";
import { decodeAwsChunked } from "../../src/s3/aws-chunked.ts";
import { S3Error } from "../../src/s3/errors.ts";
import { chunkSignature, sha256Hex, verifyRequest } from "../../src/s3/sigv4.ts";

const CREDS = {
  accessKey: "AKIAIOSFODNN7EXAMPLE",
  secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const T0 = Date.UTC(2013, 4, 24);
const EMPTY = sha256Hex("");
const SCOPE = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

function getRequest(signature: string) {
  return {
    method: "GET",
    url: "https://examplebucket.s3.amazonaws.com/test.txt",
    headers: new Headers({
      host: "examplebucket.s3.amazonaws.com",
      range: "bytes=0-9",
      "x-amz-content-sha256": EMPTY,
      "x-amz-date": "20130524T000000Z",
      authorization: `AWS4-HMAC-SHA256 Credential=${SCOPE},` +
        `SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=${signature}`,
    }),
  };
}

const GET_SIG = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

function s3Code(code: string) {
  return (e: unknown) => e instanceof S3Error && e.code === code;
}

Deno.test("sigv4: the documented GET signature checks out; a changed one does not", () => {
  const v = verifyRequest(getRequest(GET_SIG), CREDS, T0);
  assert.equal(v.payload, "sha256");
  assert.equal(v.sha256, EMPTY);
  assert.throws(
    () => verifyRequest(getRequest(GET_SIG.replace(/^f/, "0")), CREDS, T0),
    s3Code("SignatureDoesNotMatch"),
  );
  assert.throws(
    () => verifyRequest(getRequest(GET_SIG), { ...CREDS, secretKey: "wrong" }, T0),
    s3Code("SignatureDoesNotMatch"),
  );
  assert.throws(
    () => verifyRequest(getRequest(GET_SIG), { ...CREDS, accessKey: "OTHER" }, T0),
    s3Code("InvalidAccessKeyId"),
  );
  assert.throws(
    () => verifyRequest(getRequest(GET_SIG), CREDS, T0 + 16 * 60_000),
    s3Code("RequestTimeTooSkewed"),
  );
  const anonymous = { ...getRequest(GET_SIG), headers: new Headers({ host: "h" }) };
  assert.throws(() => verifyRequest(anonymous, CREDS, T0), s3Code("AccessDenied"));
});

Deno.test("sigv4: the documented presigned URL checks out until it expires", () => {
  const url = "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
    `&X-Amz-Credential=${encodeURIComponent(SCOPE)}&X-Amz-Date=20130524T000000Z` +
    "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  const req = {
    method: "GET",
    url,
    headers: new Headers({ host: "examplebucket.s3.amazonaws.com" }),
  };
  assert.equal(verifyRequest(req, CREDS, T0 + 3600_000).payload, "unsigned");
  assert.throws(() => verifyRequest(req, CREDS, T0 + 86401_000), s3Code("AccessDenied"));
  assert.throws(
    () => verifyRequest({ ...req, url: url.replace("test.txt", "other.txt") }, CREDS, T0),
    s3Code("SignatureDoesNotMatch"),
  );
});

/** The documented chunked PUT: 65536 + 1024 bytes of 'a', 64 KiB chunks. */
function chunkedExample() {
  const headers = new Headers({
    host: "s3.amazonaws.com",
    "content-encoding": "aws-chunked",
    "content-length": "66824",
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "x-amz-date": "20130524T000000Z",
    "x-amz-decoded-content-length": "66560",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
    authorization: `AWS4-HMAC-SHA256 Credential=${SCOPE},SignedHeaders=content-encoding;` +
      "content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;" +
      "x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
  });
  return { method: "PUT", url: "https://s3.amazonaws.com/examplebucket/chunkObject.txt", headers };
}

const CHUNK_SIGS = [
  "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
  "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
  "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

function chunkedBody(sigs: string[], sizes = [65536, 1024, 0]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  sizes.forEach((n, i) => {
    parts.push(enc.encode(`${n.toString(16)};chunk-signature=${sigs[i]}\r\n`));
    parts.push(new Uint8Array(n).fill(0x61), enc.encode("\r\n"));
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

async function drain(s: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of s) n += c.length;
  return n;
}

/** Splits `bytes` into pieces of `size` so lines and chunks straddle reads. */
function streamOf(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.slice(i, i + size));
  return ReadableStream.from(pieces);
}

Deno.test("aws-chunked: the documented chunk signatures decode; a tampered chunk is refused", async () => {
  const v = verifyRequest(chunkedExample(), CREDS, T0);
  assert.equal(v.payload, "streaming-signed");
  assert.equal(
    chunkSignature(v.chunks, v.chunks.seed, sha256Hex(new Uint8Array(65536).fill(0x61))),
    CHUNK_SIGS[0],
  );
  const body = chunkedBody(CHUNK_SIGS);
  assert.equal(body.length, 66824, "the documented encoded length");
  for (const size of [7, 1000, 70000]) {
    const { readable } = decodeAwsChunked(streamOf(body, size), v.chunks);
    assert.equal(await drain(readable), 66560);
  }
  const tampered = body.slice();
  tampered[200] = 0x62;
  await assert.rejects(
    drain(decodeAwsChunked(streamOf(tampered, 4096), v.chunks).readable),
    s3Code("SignatureDoesNotMatch"),
  );
  const wrongFinal = chunkedBody([CHUNK_SIGS[0], CHUNK_SIGS[1], CHUNK_SIGS[0]]);
  await assert.rejects(
    drain(decodeAwsChunked(streamOf(wrongFinal, 4096), v.chunks).readable),
    s3Code("SignatureDoesNotMatch"),
  );
  await assert.rejects(
    drain(decodeAwsChunked(streamOf(body.subarray(0, 66000), 4096), v.chunks).readable),
    s3Code("IncompleteBody"),
  );
});

Deno.test("aws-chunked: unsigned chunks with a checksum trailer", async () => {
  const text = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
  const { readable, trailers } = decodeAwsChunked(
    streamOf(new TextEncoder().encode(text), 3),
    null,
  );
  assert.equal(await drain(readable), 11);
  assert.equal(trailers.get("x-amz-checksum-crc32"), "DUoRhQ==");
  const bad = "5\r\nhello!\r\n0\r\n\r\n";
  await assert.rejects(
    drain(decodeAwsChunked(streamOf(new TextEncoder().encode(bad), 3), null).readable),
    s3Code("InvalidRequest"),
  );
});

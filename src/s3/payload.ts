/**
 * A request body on its way into the store: decoded from `aws-chunked` when
 * the client streamed it so, counted, and hashed as it passes (MD5 for the
 * ETag; the signed SHA-256, `Content-MD5` and `x-amz-checksum-*` when the
 * client sent them). {@link Payload.check} runs once the body has ended and
 * before the store commits (the store calls it for the metadata blob), so an
 * object that fails a check is never committed.
 *
 * @module
 */
import { DEFAULT_BODY_IDLE_TIMEOUT_MS, withIdleTimeout } from "../http/body-timeout.ts";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { decodeAwsChunked } from "./aws-chunked.ts";
import { type Checksum, isChecksumAlgorithm, newChecksum, toBase64 } from "./checksums.ts";
import { S3Error } from "./errors.ts";
import { hex } from "./meta.ts";
import type { Verified } from "./sigv4.ts";

/** What a body that passed every check was. */
export interface PayloadResult {
  md5: Uint8Array;
  size: number;
  /** The checksum the client sent and that matched, as a response header. */
  checksum: { header: string; value: string } | null;
}

/** A body being received. */
export interface Payload {
  /** The decoded bytes, to hand to the store. */
  stream: ReadableStream<Uint8Array>;
  /** The length the client announced. */
  length: number;
  /** Checks what passed against what was announced. @throws S3Error */
  check(): PayloadResult;
  /** The S3 error that broke the stream, else `e` itself. */
  failure(e: unknown): unknown;
}

/**
 * Receives the body of `req` (verified as `verified`), at most `maxBytes`,
 * cut off with `request_timeout` when it sends nothing for `idleMs`.
 *
 * @throws S3Error `MissingContentLength`, `EntityTooLarge`, `InvalidDigest`, `InvalidRequest`.
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * import type { Verified } from "./sigv4.ts";
 * declare const req: Request;
 * declare const verified: Verified;
 * declare const store: ObjectStore;
 * declare const key: string;
 * declare const encode: (result: PayloadResult) => Uint8Array;
 * const payload = receivePayload(req, verified, 5 << 30);
 * await store.write(key, payload.stream, { replace: true, offset: 0, meta: () => encode(payload.check()) });
 * ```
 */
export function receivePayload(
  req: Request,
  verified: Verified,
  maxBytes: number,
  idleMs = DEFAULT_BODY_IDLE_TIMEOUT_MS,
): Payload {
  const h = req.headers;
  const streaming = verified.payload.startsWith("streaming-");
  const lengthText = streaming ? h.get("x-amz-decoded-content-length") : h.get("content-length");
  if (lengthText === null) {
    throw new S3Error(
      "MissingContentLength",
      streaming
        ? "an aws-chunked upload needs x-amz-decoded-content-length"
        : "You must provide the Content-Length HTTP header.",
    );
  }
  const length = Number(lengthText);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new S3Error("InvalidArgument", `the content length '${lengthText}' is not a byte count`);
  }
  if (length > maxBytes) {
    throw new S3Error(
      "EntityTooLarge",
      `Your proposed upload of ${length} bytes exceeds the maximum allowed object size (${maxBytes})`,
    );
  }
  const contentMd5 = h.get("content-md5");
  let wantMd5: Uint8Array | null = null;
  if (contentMd5 !== null) {
    wantMd5 = new Uint8Array(Buffer.from(contentMd5, "base64"));
    if (wantMd5.length !== 16) {
      throw new S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.");
    }
  }
  // A checksum comes as a header, or as a trailer the x-amz-trailer header names.
  const trailerName = h.get("x-amz-trailer")?.trim().toLowerCase() ?? null;
  let checksumHeader: string | null = null;
  if (trailerName !== null) {
    if (!verified.payload.endsWith("-trailer")) {
      throw new S3Error("InvalidRequest", "x-amz-trailer needs a *-TRAILER x-amz-content-sha256");
    }
    checksumHeader = trailerName;
  } else {
    for (const [name] of h) {
      if (
        name.startsWith("x-amz-checksum-") && name !== "x-amz-checksum-algorithm" &&
        name !== "x-amz-checksum-type"
      ) {
        checksumHeader = name;
      }
    }
  }
  let checksum: Checksum | null = null;
  if (checksumHeader !== null) {
    const algorithm = checksumHeader.slice("x-amz-checksum-".length);
    if (!checksumHeader.startsWith("x-amz-checksum-") || !isChecksumAlgorithm(algorithm)) {
      throw new S3Error("InvalidRequest", `the checksum '${checksumHeader}' is not supported`);
    }
    checksum = newChecksum(algorithm);
  }

  // A client that stops sending is cut off (RequestTimeout), as on the native API.
  let source: ReadableStream<Uint8Array> = withIdleTimeout(req.body, idleMs) ??
    ReadableStream.from([]);
  let trailers: Map<string, string> | null = null;
  if (streaming) {
    const signed = verified.payload.startsWith("streaming-signed") ? verified.chunks : null;
    const decoder = decodeAwsChunked(
      source,
      signed,
      verified.payload === "streaming-signed-trailer",
    );
    source = decoder.readable;
    trailers = decoder.trailers;
  }
  const md5 = createHash("md5");
  const sha256 = verified.payload === "sha256" ? createHash("sha256") : null;
  let size = 0;
  let broken: unknown = null;
  const reader = source.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
        broken ??= e;
        throw e;
      }
      if (next.done) {
        controller.close();
        return;
      }
      const bytes = next.value;
      size += bytes.length;
      if (size > length) {
        broken = new S3Error(
          "InvalidRequest",
          `the body is longer than the announced ${length} bytes`,
        );
        await reader.cancel().catch(() => {});
        throw broken;
      }
      md5.update(bytes);
      sha256?.update(bytes);
      checksum?.update(bytes);
      controller.enqueue(bytes);
    },
    async cancel(reason) {
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });

  return {
    stream,
    length,
    failure: (e) => broken ?? e,
    check(): PayloadResult {
      if (size !== length) {
        throw new S3Error(
          "IncompleteBody",
          `You did not provide the number of bytes specified by the Content-Length HTTP header (${size} of ${length})`,
        );
      }
      const digest = new Uint8Array(md5.digest());
      if (sha256 && sha256.digest("hex") !== verified.sha256) {
        throw new S3Error(
          "XAmzContentSHA256Mismatch",
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      }
      if (wantMd5 && hex(wantMd5) !== hex(digest)) {
        throw new S3Error(
          "BadDigest",
          "The Content-MD5 you specified did not match what we received.",
        );
      }
      let sent: PayloadResult["checksum"] = null;
      if (checksum && checksumHeader) {
        const expected = trailers ? trailers.get(checksumHeader) : h.get(checksumHeader);
        const actual = toBase64(checksum.digest());
        if (expected === undefined || expected === null) {
          throw new S3Error(
            "InvalidRequest",
            `the trailer ${checksumHeader} was announced but not sent`,
          );
        }
        if (expected !== actual) {
          throw new S3Error(
            "BadDigest",
            `The ${checksumHeader} you specified did not match the calculated checksum.`,
          );
        }
        sent = { header: checksumHeader, value: actual };
      }
      return { md5: digest, size, checksum: sent };
    },
  };
}

/**
 * Reads a small request body (an XML document) whole, after the same checks
 * as any payload; at most `limit` bytes.
 *
 * @throws S3Error as {@link receivePayload} and {@link Payload.check}; `MalformedXML` when too long.
 * @example
 * ```ts
 * import type { Verified } from "./sigv4.ts";
 * declare const req: Request;
 * declare const verified: Verified;
 * const xml = await readSmallBody(req, verified, 4 << 20);
 * ```
 */
export async function readSmallBody(
  req: Request,
  verified: Verified,
  limit: number,
): Promise<string> {
  const payload = receivePayload(req, verified, Number.MAX_SAFE_INTEGER);
  if (payload.length > limit) {
    await req.body?.cancel();
    throw new S3Error(
      "MalformedXML",
      `the request body of ${payload.length} bytes is over ${limit}`,
    );
  }
  const parts: Uint8Array[] = [];
  try {
    for await (const chunk of payload.stream) parts.push(chunk);
  } catch (e) {
    throw payload.failure(e);
  }
  payload.check();
  return new TextDecoder().decode(Buffer.concat(parts));
}

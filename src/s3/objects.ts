/**
 * Object operations: PutObject, GetObject (Range, conditional headers),
 * HeadObject, DeleteObject, DeleteObjects, CopyObject. Every write goes
 * through the store's public write with the S3 metadata blob, so it is logged,
 * mirrored and committed like a native PUT; the blob is built only once the
 * body passed its checks, so an object that fails one is never committed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { isError } from "../errors/mod.ts";
import { parseRange } from "../http/range.ts";
import type { ObjectInfo, ObjectStore } from "../storage/objects/store.ts";
import { nativeKey, requireBucket, requireWritable, xmlResponse } from "./buckets.ts";
import { noteWrite, type S3Context, type S3Request } from "./context.ts";
import { asS3Error, S3Error } from "./errors.ts";
import { decodeMeta, DEFAULT_CONTENT_TYPE, encodeMeta, hex, s3Etag, type S3Meta } from "./meta.ts";
import { type Payload, type PayloadResult, readSmallBody, receivePayload } from "./payload.ts";
import { childrenNamed, childText, element, parseXml, textElement, xmlDocument } from "./xml.ts";

/** Most keys in one DeleteObjects, as S3. */
const MAX_DELETE_KEYS = 1000;
/** Largest XML body accepted (1000 keys of 1024 bytes, escaped). */
export const MAX_XML_BYTES = 8 << 20;

/**
 * The stored object of a request's key.
 *
 * @throws S3Error `NoSuchBucket`, `NoSuchKey`
 */
function objectOf(ctx: S3Context, bucket: string, key: string): ObjectInfo {
  requireBucket(ctx.store, bucket);
  const info = ctx.store.stat(nativeKey(bucket, key));
  if (info === null) {
    throw new S3Error("NoSuchKey", "The specified key does not exist.", { Key: key });
  }
  return info;
}

/** Content-Type and `x-amz-meta-*` of a request. */
function describedBy(headers: Headers): Pick<S3Meta, "contentType" | "user"> {
  const user: Array<[string, string]> = [];
  for (const [name, value] of headers) {
    if (name.startsWith("x-amz-meta-")) user.push([name.slice(11), value]);
  }
  return { contentType: headers.get("content-type") ?? DEFAULT_CONTENT_TYPE, user };
}

/**
 * Streams `payload` into `key`, committed with the blob `describe` builds
 * from the checked body.
 *
 * @example
 * ```ts
 * import { encodeMeta } from "./meta.ts";
 * import type { Payload } from "./payload.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const payload: Payload;
 * const result = await writeChecked(store, "b/k", payload, (r) =>
 *   encodeMeta({ md5: r.md5, parts: 0, contentType: "text/plain", user: [] }));
 * ```
 */
export async function writeChecked(
  store: ObjectStore,
  key: string,
  payload: Payload,
  describe: (result: PayloadResult) => Uint8Array,
): Promise<PayloadResult & { mirrored: boolean }> {
  let result: PayloadResult | null = null;
  let mirrored: boolean;
  try {
    ({ mirrored } = await store.write(key, payload.stream, {
      replace: true,
      offset: 0,
      meta: () => describe(result = payload.check()),
    }));
  } catch (e) {
    throw payload.failure(e);
  }
  return { ...result!, mirrored };
}

/** PUT /bucket/key (CopyObject when `x-amz-copy-source` is set). */
export async function putObject(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const key = nativeKey(r.bucket, r.key);
  if (r.req.headers.has("x-amz-copy-source")) return await copyObject(ctx, r, key);
  const described = describedBy(r.req.headers);
  encodeMeta({ md5: new Uint8Array(16), parts: 0, ...described }); // too much metadata: refused before the body
  const payload = receivePayload(r.req, r.verified, ctx.maxObjectBytes, ctx.bodyIdleTimeoutMs);
  const result = await writeChecked(
    ctx.store,
    key,
    payload,
    (res) => encodeMeta({ md5: res.md5, parts: 0, ...described }),
  );
  noteWrite(r, result.mirrored);
  ctx.metrics?.clientBytes("in", result.size);
  const headers: Record<string, string> = { ETag: `"${hex(result.md5)}"` };
  if (result.checksum) headers[result.checksum.header] = result.checksum.value;
  return new Response(null, { status: 200, headers });
}

/** The headers that describe an object. */
function objectHeaders(info: ObjectInfo): Record<string, string> {
  const meta = decodeMeta(info.meta);
  const headers: Record<string, string> = {
    "ETag": `"${s3Etag(info)}"`,
    "Last-Modified": new Date(info.mtime).toUTCString(),
    "Accept-Ranges": "bytes",
    "Content-Type": meta?.contentType ?? DEFAULT_CONTENT_TYPE,
  };
  for (const [k, v] of meta?.user ?? []) headers[`x-amz-meta-${k}`] = v;
  return headers;
}

/**
 * The answer the conditional headers call for (304), or null to go on.
 *
 * @throws S3Error `PreconditionFailed`
 */
function conditional(headers: Headers, etag: string, mtime: number): Response | null {
  const seconds = Math.floor(mtime / 1000) * 1000;
  const matches = (list: string) =>
    list.split(",").map((s) => s.trim().replace(/^W\//, "").replace(/^"|"$/g, ""))
      .some((t) => t === "*" || t === etag);
  const date = (name: string) => {
    const v = headers.get(name);
    const t = v === null ? NaN : Date.parse(v);
    return Number.isNaN(t) ? null : t;
  };
  const ifMatch = headers.get("if-match");
  const failed = new S3Error(
    "PreconditionFailed",
    "At least one of the pre-conditions you specified did not hold",
  );
  if (ifMatch !== null) {
    if (!matches(ifMatch)) throw failed;
  } else {
    const since = date("if-unmodified-since");
    if (since !== null && seconds > since) throw failed;
  }
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    if (matches(ifNoneMatch)) {
      return new Response(null, { status: 304, headers: { ETag: `"${etag}"` } });
    }
  } else {
    const since = date("if-modified-since");
    if (since !== null && seconds <= since) {
      return new Response(null, { status: 304, headers: { ETag: `"${etag}"` } });
    }
  }
  return null;
}

/** GET or HEAD /bucket/key */
export function getObject(ctx: S3Context, r: S3Request): Response {
  const info = objectOf(ctx, r.bucket, r.key);
  const headers = objectHeaders(info);
  const stop = conditional(r.req.headers, s3Etag(info), info.mtime);
  if (stop) {
    stop.headers.set("Last-Modified", headers["Last-Modified"]);
    return stop;
  }
  let range;
  try {
    range = parseRange(r.req.headers.get("range"), info.size);
  } catch (e) {
    if (!isError(e, "range_not_satisfiable")) throw e;
    throw new S3Error("InvalidRange", "The requested range is not satisfiable", {
      RangeRequested: r.req.headers.get("range") ?? "",
      ActualObjectSize: String(info.size),
    });
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? info.size;
  headers["Content-Length"] = String(end - start);
  if (range) headers["Content-Range"] = `bytes ${start}-${end - 1}/${info.size}`;
  const body = r.method === "HEAD" ? null : ctx.store.read(nativeKey(r.bucket, r.key), start, end);
  if (body !== null) ctx.metrics?.clientBytes("out", end - start);
  return new Response(body, { status: range ? 206 : 200, headers });
}

/** DELETE /bucket/key: 204 whether or not it existed, as S3. */
export async function deleteObject(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const done = await ctx.store.delete(nativeKey(r.bucket, r.key));
  if (done) noteWrite(r, done.mirrored);
  return new Response(null, { status: 204 });
}

/** POST /bucket?delete */
export async function deleteObjects(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const doc = parseXml(await readSmallBody(r.req, r.verified, MAX_XML_BYTES));
  if (doc.name !== "Delete") {
    throw new S3Error("MalformedXML", "the body is not a <Delete> document");
  }
  const quiet = childText(doc, "Quiet")?.trim() === "true";
  const objects = childrenNamed(doc, "Object");
  if (objects.length === 0 || objects.length > MAX_DELETE_KEYS) {
    throw new S3Error("MalformedXML", `a Delete names 1 to ${MAX_DELETE_KEYS} objects`);
  }
  const out: string[] = [];
  for (const o of objects) {
    const key = childText(o, "Key") ?? "";
    try {
      const done = await ctx.store.delete(nativeKey(r.bucket, key));
      if (done) noteWrite(r, done.mirrored);
      if (!quiet) out.push(element("Deleted", [textElement("Key", key)]));
    } catch (e) {
      const err = asS3Error(e);
      if (err === null) throw e;
      out.push(element("Error", [
        textElement("Key", key),
        textElement("Code", err.code),
        textElement("Message", err.message),
      ]));
    }
  }
  return xmlResponse(xmlDocument("DeleteResult", out));
}

/** The bucket and key an `x-amz-copy-source` names. */
function copySource(header: string): { bucket: string; key: string } {
  const path = header.split("?")[0].replace(/^\//, "");
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new S3Error("InvalidArgument", "x-amz-copy-source is not valid percent-encoded UTF-8");
  }
  const slash = decoded.indexOf("/");
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error("InvalidArgument", "x-amz-copy-source must be BUCKET/KEY");
  }
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

/** PUT /bucket/key with x-amz-copy-source: the bytes stream from the source into the target. */
async function copyObject(ctx: S3Context, r: S3Request, target: string): Promise<Response> {
  const src = copySource(r.req.headers.get("x-amz-copy-source")!);
  const info = objectOf(ctx, src.bucket, src.key);
  await r.req.body?.cancel();
  const replace = r.req.headers.get("x-amz-metadata-directive") === "REPLACE";
  const old = decodeMeta(info.meta);
  const described = replace
    ? describedBy(r.req.headers)
    : { contentType: old?.contentType ?? DEFAULT_CONTENT_TYPE, user: old?.user ?? [] };
  const md5 = createHash("md5");
  const source = ctx.store.read(nativeKey(src.bucket, src.key), 0, info.size).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        md5.update(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  let digest: Uint8Array | null = null;
  const written = await ctx.store.write(target, source, {
    replace: true,
    offset: 0,
    meta: () => encodeMeta({ md5: digest = new Uint8Array(md5.digest()), parts: 0, ...described }),
  });
  noteWrite(r, written.mirrored);
  const stat = ctx.store.stat(target);
  return xmlResponse(xmlDocument("CopyObjectResult", {
    LastModified: new Date(stat?.mtime ?? Date.now()).toISOString(),
    ETag: `"${hex(digest!)}"`,
  }));
}

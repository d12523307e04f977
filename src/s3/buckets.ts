/**
 * Buckets: object `k` of bucket `b` is the native key `b/k`, so both APIs see
 * the same objects. A bucket exists when its marker, an empty object in the
 * appliance's reserved key space (`U+10FFFF s3/bucket/NAME`), does; its mtime
 * is the bucket's creation date. Markers are objects like any other: logged,
 * mirrored and in every CP.
 *
 * @module
 */
import { isError } from "../errors/mod.ts";
import { encodeKey, MAX_KEY_BYTES, RESERVED_PREFIX } from "../storage/objects/key.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import type { S3Context, S3Request } from "./context.ts";
import { S3Error } from "./errors.ts";
import { element, textElement, xmlDocument } from "./xml.ts";

/** Where the S3 face keeps what is not an object: bucket markers, uploads, parts. */
export const S3_RESERVED = `${RESERVED_PREFIX}s3/`;
const MARKERS = `${S3_RESERVED}bucket/`;
/** Most buckets listed (S3's default quota is far below). */
const MAX_BUCKETS = 10_000;

/**
 * Checks S3's bucket naming rules: 3 to 63 of `a-z 0-9 . -`, starting and
 * ending with a letter or digit.
 *
 * @throws S3Error `InvalidBucketName`
 * @example
 * ```ts
 * validateBucketName("photos-2026");
 * ```
 */
export function validateBucketName(name: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) || name.includes("..")) {
    throw new S3Error("InvalidBucketName", "The specified bucket is not valid.", {
      BucketName: name,
    });
  }
}

/**
 * The native key of object `key` in `bucket`.
 *
 * @throws S3Error `KeyTooLongError` or `InvalidArgument` for a key the store refuses.
 * @example
 * ```ts
 * nativeKey("b", "photos/a.jpg"); // "b/photos/a.jpg"
 * ```
 */
export function nativeKey(bucket: string, key: string): string {
  const native = `${bucket}/${key}`;
  try {
    encodeKey(native);
  } catch (e) {
    if (!isError(e, "bad_key")) throw e;
    const tooLong = new TextEncoder().encode(native).length > MAX_KEY_BYTES;
    throw new S3Error(tooLong ? "KeyTooLongError" : "InvalidArgument", e.message, { Key: key });
  }
  return native;
}

/**
 * Throws `NoSuchBucket` unless `bucket` exists.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * requireBucket(store, "b");
 * ```
 */
export function requireBucket(store: ObjectStore, bucket: string): void {
  validateBucketName(bucket);
  if (store.stat(MARKERS + bucket) === null) {
    throw new S3Error("NoSuchBucket", "The specified bucket does not exist", {
      BucketName: bucket,
    });
  }
}

/**
 * Waits until a write may be logged, as the native API does; a refusal is
 * mapped to its S3 error (`AccessDenied` for a destination or a fenced source).
 */
export function requireWritable(ctx: S3Context): Promise<void> {
  return ctx.admitWrite();
}

/** GET / */
export function listBuckets(ctx: S3Context): Response {
  const buckets: string[] = [];
  let after: string | undefined;
  while (buckets.length < MAX_BUCKETS) {
    const page = ctx.store.list({ prefix: MARKERS, startAfter: after, limit: 1000 });
    for (const o of page.objects) {
      buckets.push(
        element("Bucket", [
          textElement("Name", o.key.slice(MARKERS.length)),
          textElement("CreationDate", new Date(o.mtime).toISOString()),
        ]),
      );
    }
    if (page.next === null) break;
    after = page.next;
  }
  return xmlResponse(xmlDocument("ListAllMyBucketsResult", [
    element("Owner", [textElement("ID", "refsync"), textElement("DisplayName", "refsync")]),
    element("Buckets", buckets),
  ]));
}

/** PUT /bucket */
export async function createBucket(ctx: S3Context, r: S3Request): Promise<Response> {
  validateBucketName(r.bucket);
  await requireWritable(ctx);
  await r.req.body?.cancel(); // the location constraint does not matter: one appliance, one place
  if (ctx.store.stat(MARKERS + r.bucket) !== null) {
    throw new S3Error(
      "BucketAlreadyOwnedByYou",
      "Your previous request to create the named bucket succeeded and you already own it.",
      { BucketName: r.bucket },
    );
  }
  await ctx.store.write(MARKERS + r.bucket, null, { replace: true, offset: 0 });
  return new Response(null, { status: 200, headers: { Location: `/${r.bucket}` } });
}

/** HEAD /bucket */
export function headBucket(ctx: S3Context, r: S3Request): Response {
  requireBucket(ctx.store, r.bucket);
  return new Response(null, { status: 200, headers: { "x-amz-bucket-region": "us-east-1" } });
}

/** GET /bucket?location */
export function bucketLocation(ctx: S3Context, r: S3Request): Response {
  requireBucket(ctx.store, r.bucket);
  // Empty means us-east-1, which every client accepts; the appliance takes any region.
  return xmlResponse(xmlDocument("LocationConstraint", []));
}

/**
 * DELETE /bucket: only when it holds no object. Uploads in progress in it
 * are dropped with it (`dropUploads`).
 */
export async function deleteBucket(
  ctx: S3Context,
  r: S3Request,
  dropUploads: (bucket: string) => Promise<void>,
): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  if (ctx.store.list({ prefix: `${r.bucket}/`, limit: 1 }).objects.length > 0) {
    throw new S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", {
      BucketName: r.bucket,
    });
  }
  await dropUploads(r.bucket);
  await ctx.store.delete(MARKERS + r.bucket);
  return new Response(null, { status: 204 });
}

/**
 * An XML answer.
 *
 * @example
 * ```ts
 * import { xmlDocument } from "./xml.ts";
 * const res = xmlResponse(xmlDocument("LocationConstraint", []));
 * ```
 */
export function xmlResponse(
  body: string,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, { status, headers: { "Content-Type": "application/xml", ...headers } });
}

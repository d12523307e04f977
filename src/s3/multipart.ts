/**
 * Multipart uploads. An upload is a marker object in the reserved key space
 * (`U+10FFFF s3/upload/BUCKET/ID`, holding the target key and its
 * Content-Type as JSON; its mtime is the initiation time) and its parts are
 * objects beside it (`U+10FFFF s3/part/BUCKET/ID/NNNNN`, each with its MD5 in
 * the metadata blob). Parts are ordinary store writes, so each is logged,
 * mirrored and durable when UploadPart answers. Completion is ONE store write
 * that streams the listed parts into the target, so no reader and no recovery
 * sees half of it; then the marker and the parts are deleted (a crash in
 * between leaves them for the expiry sweep, never a half object). Uploads
 * older than the expiry age are swept periodically, a bounded number of
 * deletes per sweep.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import type { ObjectInfo, ObjectStore } from "../storage/objects/store.ts";
import { nativeKey, requireBucket, requireWritable, S3_RESERVED, xmlResponse } from "./buckets.ts";
import { noteWrite, type S3Context, type S3Request } from "./context.ts";
import { S3Error } from "./errors.ts";
import { decodeMeta, DEFAULT_CONTENT_TYPE, encodeMeta, hex, type S3Meta } from "./meta.ts";
import { MAX_XML_BYTES, writeChecked } from "./objects.ts";
import { readSmallBody, receivePayload } from "./payload.ts";
import { childrenNamed, childText, element, parseXml, textElement, xmlDocument } from "./xml.ts";

const UPLOADS = `${S3_RESERVED}upload/`;
const PARTS = `${S3_RESERVED}part/`;
/** S3's smallest part but the last. */
export const MIN_PART_BYTES = 5 << 20;
/** S3's part numbers. */
const MAX_PARTS = 10_000;
/** Uploads of one bucket considered by ListMultipartUploads. */
const MAX_LISTED_UPLOADS = 10_000;

/** What an upload's marker holds. */
interface Upload {
  key: string;
  contentType: string;
  user: Array<[string, string]>;
  initiated: number;
}

function partKey(bucket: string, id: string, n: number): string {
  return `${PARTS}${bucket}/${id}/${String(n).padStart(5, "0")}`;
}

/** The upload `id` of `bucket` for `key` (any key when null). @throws S3Error `NoSuchUpload` */
async function uploadOf(
  store: ObjectStore,
  bucket: string,
  id: string | undefined,
  key: string | null,
): Promise<Upload> {
  const missing = new S3Error(
    "NoSuchUpload",
    "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
    { UploadId: id ?? "" },
  );
  if (id === undefined || !/^[0-9a-f]{32}$/.test(id)) throw missing;
  const marker = `${UPLOADS}${bucket}/${id}`;
  const info = store.stat(marker);
  if (info === null) throw missing;
  const upload = await readUpload(store, info);
  if (key !== null && upload.key !== key) throw missing;
  return upload;
}

async function readUpload(store: ObjectStore, info: ObjectInfo): Promise<Upload> {
  const text = await new Response(store.read(info.key, 0, info.size)).text();
  const json = JSON.parse(text) as Omit<Upload, "initiated">;
  return { ...json, initiated: info.mtime };
}

/** POST /bucket/key?uploads */
export async function createUpload(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  nativeKey(r.bucket, r.key);
  await r.req.body?.cancel();
  const user: Array<[string, string]> = [];
  for (const [name, value] of r.req.headers) {
    if (name.startsWith("x-amz-meta-")) user.push([name.slice(11), value]);
  }
  const contentType = r.req.headers.get("content-type") ?? DEFAULT_CONTENT_TYPE;
  encodeMeta({ md5: new Uint8Array(16), parts: 1, contentType, user }); // refused now, not at completion
  const id = hex(crypto.getRandomValues(new Uint8Array(16)));
  const body = new TextEncoder().encode(JSON.stringify({ key: r.key, contentType, user }));
  await ctx.store.write(`${UPLOADS}${r.bucket}/${id}`, ReadableStream.from([body]), {
    replace: true,
    offset: 0,
  });
  return xmlResponse(xmlDocument("InitiateMultipartUploadResult", {
    Bucket: r.bucket,
    Key: r.key,
    UploadId: id,
  }));
}

function partNumberOf(text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_PARTS) {
    throw new S3Error(
      "InvalidArgument",
      `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`,
    );
  }
  return n;
}

/** PUT /bucket/key?partNumber=N&uploadId=ID */
export async function uploadPart(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const n = partNumberOf(r.query.get("partNumber"));
  const id = r.query.get("uploadId")!;
  await uploadOf(ctx.store, r.bucket, id, r.key);
  if (r.req.headers.has("x-amz-copy-source")) {
    throw new S3Error("NotImplemented", "UploadPartCopy is not implemented; use CopyObject");
  }
  const payload = receivePayload(r.req, r.verified, ctx.maxObjectBytes, ctx.bodyIdleTimeoutMs);
  const result = await writeChecked(
    ctx.store,
    partKey(r.bucket, id, n),
    payload,
    (res) => encodeMeta({ md5: res.md5, parts: 0, contentType: "", user: [] }),
  );
  noteWrite(r, result.mirrored);
  ctx.metrics?.clientBytes("in", result.size);
  const headers: Record<string, string> = { ETag: `"${hex(result.md5)}"` };
  if (result.checksum) headers[result.checksum.header] = result.checksum.value;
  return new Response(null, { status: 200, headers });
}

/** POST /bucket/key?uploadId=ID */
export async function completeUpload(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const id = r.query.get("uploadId")!;
  const upload = await uploadOf(ctx.store, r.bucket, id, r.key);
  const doc = parseXml(await readSmallBody(r.req, r.verified, MAX_XML_BYTES));
  if (doc.name !== "CompleteMultipartUpload") {
    throw new S3Error("MalformedXML", "the body is not a <CompleteMultipartUpload> document");
  }
  const listed = childrenNamed(doc, "Part").map((p) => ({
    n: partNumberOf(childText(p, "PartNumber")?.trim()),
    etag: (childText(p, "ETag") ?? "").trim().replace(/^"|"$/g, ""),
  }));
  if (listed.length === 0) {
    throw new S3Error("MalformedXML", "You must specify at least one part");
  }
  const parts: Array<{ info: ObjectInfo; md5: Uint8Array }> = [];
  let total = 0;
  for (let i = 0; i < listed.length; i++) {
    if (i > 0 && listed[i].n <= listed[i - 1].n) {
      throw new S3Error("InvalidPartOrder", "The list of parts was not in ascending order.");
    }
    const info = ctx.store.stat(partKey(r.bucket, id, listed[i].n));
    const md5 = decodeMeta(info?.meta ?? null)?.md5;
    if (!info || !md5 || hex(md5) !== listed[i].etag) {
      throw new S3Error(
        "InvalidPart",
        "One or more of the specified parts could not be found or its ETag did not match.",
        { PartNumber: String(listed[i].n), ETag: listed[i].etag },
      );
    }
    if (i < listed.length - 1 && info.size < MIN_PART_BYTES) {
      throw new S3Error(
        "EntityTooSmall",
        "Your proposed upload is smaller than the minimum allowed size",
        {
          PartNumber: String(listed[i].n),
          ProposedSize: String(info.size),
          MinSizeAllowed: String(MIN_PART_BYTES),
        },
      );
    }
    total += info.size;
    parts.push({ info, md5 });
  }
  if (total > ctx.maxObjectBytes) {
    throw new S3Error(
      "EntityTooLarge",
      `the upload would be ${total} bytes; at most ${ctx.maxObjectBytes}`,
    );
  }
  const store = ctx.store;
  async function* concatenated(): AsyncGenerator<Uint8Array> {
    for (const p of parts) yield* store.read(p.info.key, 0, p.info.size);
  }
  const etagMd5 = new Uint8Array(
    createHash("md5").update(Buffer.concat(parts.map((p) => p.md5))).digest(),
  );
  const meta: S3Meta = {
    md5: etagMd5,
    parts: parts.length,
    contentType: upload.contentType,
    user: upload.user,
  };
  const written = await store.write(
    nativeKey(r.bucket, r.key),
    ReadableStream.from(concatenated()),
    {
      replace: true,
      offset: 0,
      meta: () => encodeMeta(meta),
    },
  );
  noteWrite(r, written.mirrored);
  await dropUpload(store, r.bucket, id);
  const etag = `"${hex(etagMd5)}-${parts.length}"`;
  return xmlResponse(xmlDocument("CompleteMultipartUploadResult", {
    Location: `/${r.bucket}/${r.key}`,
    Bucket: r.bucket,
    Key: r.key,
    ETag: etag,
  }));
}

/** Deletes the marker, then the parts (a crash between leaves parts the sweep removes). */
async function dropUpload(store: ObjectStore, bucket: string, id: string): Promise<number> {
  let deleted = 0;
  if (await store.delete(`${UPLOADS}${bucket}/${id}`)) deleted++;
  for (let round = 0; round < MAX_PARTS; round++) {
    const page = store.list({ prefix: `${PARTS}${bucket}/${id}/`, limit: 1000 });
    for (const o of page.objects) if (await store.delete(o.key)) deleted++;
    if (page.objects.length === 0 || page.next === null) break;
  }
  return deleted;
}

/** DELETE /bucket/key?uploadId=ID */
export async function abortUpload(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  await requireWritable(ctx);
  const id = r.query.get("uploadId")!;
  await uploadOf(ctx.store, r.bucket, id, r.key);
  await dropUpload(ctx.store, r.bucket, id);
  return new Response(null, { status: 204 });
}

/** GET /bucket/key?uploadId=ID */
export async function listParts(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  const id = r.query.get("uploadId")!;
  await uploadOf(ctx.store, r.bucket, id, r.key);
  const maxParts = Math.min(1000, Number(r.query.get("max-parts") ?? 1000));
  const marker = Number(r.query.get("part-number-marker") ?? 0);
  if (!Number.isInteger(maxParts) || maxParts < 0 || !Number.isInteger(marker) || marker < 0) {
    throw new S3Error(
      "InvalidArgument",
      "max-parts and part-number-marker are non-negative integers",
    );
  }
  const page = ctx.store.list({
    prefix: `${PARTS}${r.bucket}/${id}/`,
    startAfter: marker > 0 ? partKey(r.bucket, id, Math.min(marker, MAX_PARTS)) : undefined,
    limit: maxParts + 1,
  });
  const shown = page.objects.slice(0, maxParts);
  const truncated = page.objects.length > maxParts;
  const number = (key: string) => Number(key.slice(key.lastIndexOf("/") + 1));
  const last = shown.length ? number(shown[shown.length - 1].key) : marker;
  return xmlResponse(xmlDocument("ListPartsResult", [
    textElement("Bucket", r.bucket),
    textElement("Key", r.key),
    textElement("UploadId", id),
    textElement("PartNumberMarker", marker),
    textElement("NextPartNumberMarker", last),
    textElement("MaxParts", maxParts),
    textElement("IsTruncated", truncated),
    textElement("StorageClass", "STANDARD"),
    ...shown.map((o) =>
      element("Part", [
        textElement("PartNumber", number(o.key)),
        textElement("LastModified", new Date(o.mtime).toISOString()),
        textElement("ETag", `"${hex(decodeMeta(o.meta)?.md5 ?? new Uint8Array(16))}"`),
        textElement("Size", o.size),
      ])
    ),
  ]));
}

/** GET /bucket?uploads */
export async function listUploads(ctx: S3Context, r: S3Request): Promise<Response> {
  requireBucket(ctx.store, r.bucket);
  const prefix = r.query.get("prefix") ?? "";
  const keyMarker = r.query.get("key-marker") ?? "";
  const idMarker = r.query.get("upload-id-marker") ?? "";
  const maxUploads = Math.min(1000, Number(r.query.get("max-uploads") ?? 1000));
  if (!Number.isInteger(maxUploads) || maxUploads < 0) {
    throw new S3Error("InvalidArgument", "max-uploads must be a non-negative integer");
  }
  const all: Array<Upload & { id: string }> = [];
  let after: string | undefined;
  while (all.length < MAX_LISTED_UPLOADS) {
    const page = ctx.store.list({
      prefix: `${UPLOADS}${r.bucket}/`,
      startAfter: after,
      limit: 1000,
    });
    for (const o of page.objects) {
      const upload = await readUpload(ctx.store, o);
      if (upload.key.startsWith(prefix)) {
        all.push({ ...upload, id: o.key.slice(o.key.lastIndexOf("/") + 1) });
      }
    }
    if (page.next === null) break;
    after = page.next;
  }
  // S3 orders uploads by key, then by initiation.
  all.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated - b.initiated));
  const start = all.findIndex((u) =>
    keyMarker === "" || u.key > keyMarker ||
    (u.key === keyMarker && idMarker !== "" && u.id > idMarker)
  );
  const rest = start < 0 ? [] : all.slice(start);
  const shown = rest.slice(0, maxUploads);
  const truncated = rest.length > maxUploads;
  const last = shown[shown.length - 1];
  return xmlResponse(xmlDocument("ListMultipartUploadsResult", [
    textElement("Bucket", r.bucket),
    textElement("KeyMarker", keyMarker),
    textElement("UploadIdMarker", idMarker),
    textElement("NextKeyMarker", last?.key ?? ""),
    textElement("NextUploadIdMarker", last?.id ?? ""),
    textElement("Prefix", prefix),
    textElement("MaxUploads", maxUploads),
    textElement("IsTruncated", truncated),
    ...shown.map((u) =>
      element("Upload", [
        textElement("Key", u.key),
        textElement("UploadId", u.id),
        textElement("StorageClass", "STANDARD"),
        textElement("Initiated", new Date(u.initiated).toISOString()),
      ])
    ),
  ]));
}

/** Drops every upload of `bucket` (it is being deleted). */
export async function dropBucketUploads(store: ObjectStore, bucket: string): Promise<void> {
  for (let round = 0; round < MAX_LISTED_UPLOADS; round++) {
    const page = store.list({ prefix: `${UPLOADS}${bucket}/`, limit: 1000 });
    for (const o of page.objects) {
      await dropUpload(store, bucket, o.key.slice(o.key.lastIndexOf("/") + 1));
    }
    if (page.next === null) break;
  }
}

/**
 * Drops uploads initiated more than `maxAgeMs` ago, and parts whose upload is
 * gone (a crash between a completion's marker and part deletes). Each
 * {@link sweep} looks at a bounded number of entries and goes on where the
 * previous one stopped, so every entry is visited in turn however many there
 * are.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const sweeper = new UploadSweeper(store, 24 * 3600_000);
 * await sweeper.sweep(1000);
 * ```
 */
export class UploadSweeper {
  readonly #store: ObjectStore;
  readonly #maxAgeMs: number;
  #uploadsAfter: string | undefined;
  #partsAfter: string | undefined;

  constructor(store: ObjectStore, maxAgeMs: number) {
    this.#store = store;
    this.#maxAgeMs = maxAgeMs;
  }

  /** Looks at up to `budget` uploads and `budget` parts; resolves with the objects deleted. */
  async sweep(budget: number, now: number = Date.now()): Promise<number> {
    const store = this.#store;
    let deleted = 0;
    const uploads = store.list({ prefix: UPLOADS, startAfter: this.#uploadsAfter, limit: budget });
    for (const o of uploads.objects) {
      if (now - o.mtime < this.#maxAgeMs) continue;
      const [bucket, id] = o.key.slice(UPLOADS.length).split("/");
      deleted += await dropUpload(store, bucket, id);
    }
    this.#uploadsAfter = uploads.next ?? undefined;
    const parts = store.list({ prefix: PARTS, startAfter: this.#partsAfter, limit: budget });
    for (const o of parts.objects) {
      const [bucket, id] = o.key.slice(PARTS.length).split("/");
      if (store.stat(`${UPLOADS}${bucket}/${id}`) === null && await store.delete(o.key)) deleted++;
    }
    this.#partsAfter = parts.next ?? undefined;
    return deleted;
  }
}

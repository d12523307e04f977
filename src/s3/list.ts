/**
 * ListObjectsV2 and ListObjects (v1): a bucket's keys in UTF-8 byte order
 * with `prefix`, `delimiter` (keys rolled up into CommonPrefixes), `max-keys`
 * and paging (`continuation-token` / `start-after`, or `marker`). Pages of the
 * store's listing are read one at a time, and a common prefix is skipped in
 * one step, so work and memory stay bounded by `max-keys`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { MAX_KEY_BYTES } from "../storage/objects/key.ts";
import { requireBucket, xmlResponse } from "./buckets.ts";
import type { S3Context, S3Request } from "./context.ts";
import { S3Error } from "./errors.ts";
import { s3Etag } from "./meta.ts";
import { uriEncode } from "./sigv4.ts";
import { element, textElement, xmlDocument } from "./xml.ts";

/** S3's largest page. */
const MAX_KEYS = 1000;
/** Store listing calls one request may make (each key or common prefix costs at most one). */
const MAX_ROUNDS = 2 * MAX_KEYS + 2;

type Item = { key: string; size: number; mtime: number; etag: string } | { prefix: string };

/**
 * A start-after that sorts after every key beginning with `prefix` (native):
 * U+10FFFF is the largest code point, and no key is longer than 1024 bytes.
 */
function pastPrefix(prefix: string): string {
  const room = MAX_KEY_BYTES - new TextEncoder().encode(prefix).length;
  return prefix + "\u{10FFFF}".repeat(Math.max(1, Math.ceil(room / 4) + 1));
}

/**
 * The listing of `bucket`: up to `maxKeys` items after `after` (a native
 * key), and whether more follow.
 */
function collect(
  ctx: S3Context,
  bucket: string,
  prefix: string,
  delimiter: string,
  after: string | undefined,
  maxKeys: number,
): { items: Item[]; truncated: boolean } {
  const base = `${bucket}/`;
  const items: Item[] = [];
  let cursor = after;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const limit = Math.min(MAX_KEYS, maxKeys - items.length + 1);
    const page = ctx.store.list({ prefix: base + prefix, startAfter: cursor, limit });
    let restart = false;
    for (const o of page.objects) {
      const key = o.key.slice(base.length);
      const cut = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
      if (items.length === maxKeys) return { items, truncated: true };
      if (cut >= 0) {
        const common = key.slice(0, cut + delimiter.length);
        items.push({ prefix: common });
        cursor = pastPrefix(base + common);
        restart = true;
        break;
      }
      items.push({ key, size: o.size, mtime: o.mtime, etag: s3Etag(o) });
      cursor = o.key;
    }
    if (!restart && page.next === null) return { items, truncated: false };
  }
  throw new Error("invariant: listing did not end within its bound");
}

function maxKeysOf(text: string | undefined): number {
  if (text === undefined) return MAX_KEYS;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new S3Error("InvalidArgument", "max-keys must be a non-negative integer");
  }
  return Math.min(n, MAX_KEYS);
}

/** Continuation tokens name the last item: `k` + key or `p` + common prefix, base64. */
function encodeToken(item: Item): string {
  const text = "key" in item ? `k${item.key}` : `p${item.prefix}`;
  return Buffer.from(text).toString("base64");
}

function afterToken(bucket: string, token: string): string {
  const text = Buffer.from(token, "base64").toString();
  if (text[0] === "k") return `${bucket}/${text.slice(1)}`;
  if (text[0] === "p") return pastPrefix(`${bucket}/${text.slice(1)}`);
  throw new S3Error("InvalidArgument", "The continuation token provided is incorrect");
}

/** GET /bucket?list-type=2 and GET /bucket (v1). */
export function listObjects(ctx: S3Context, r: S3Request): Response {
  requireBucket(ctx.store, r.bucket);
  const q = r.query;
  const v2 = q.get("list-type") === "2";
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const maxKeys = maxKeysOf(q.get("max-keys"));
  const encoding = q.get("encoding-type");
  if (encoding !== undefined && encoding !== "url") {
    throw new S3Error("InvalidArgument", "Invalid Encoding Method specified in Request");
  }
  const name = (s: string) => (encoding === "url" ? uriEncode(s, true) : s);
  let after: string | undefined;
  const token = q.get("continuation-token");
  const marker = v2 ? q.get("start-after") : q.get("marker");
  if (v2 && token !== undefined) after = afterToken(r.bucket, token);
  else if (marker !== undefined && marker !== "") {
    // A marker that is a common prefix (v1's NextMarker) resumes after everything under it.
    const rest = marker.slice(prefix.length);
    const isCommon = delimiter !== "" && marker.startsWith(prefix) &&
      rest.indexOf(delimiter) === rest.length - delimiter.length;
    after = isCommon ? pastPrefix(`${r.bucket}/${marker}`) : `${r.bucket}/${marker}`;
  }
  const { items, truncated } = maxKeys === 0
    ? { items: [], truncated: false }
    : collect(ctx, r.bucket, prefix, delimiter, after, maxKeys);
  const contents: string[] = [];
  const commons: string[] = [];
  for (const item of items) {
    if ("key" in item) {
      contents.push(element("Contents", [
        textElement("Key", name(item.key)),
        textElement("LastModified", new Date(item.mtime).toISOString()),
        textElement("ETag", `"${item.etag}"`),
        textElement("Size", item.size),
        textElement("StorageClass", "STANDARD"),
      ]));
    } else commons.push(element("CommonPrefixes", [textElement("Prefix", name(item.prefix))]));
  }
  const head = [
    textElement("Name", r.bucket),
    textElement("Prefix", name(prefix)),
    ...(delimiter ? [textElement("Delimiter", name(delimiter))] : []),
    textElement("MaxKeys", maxKeys),
    ...(encoding ? [textElement("EncodingType", encoding)] : []),
    textElement("IsTruncated", truncated),
  ];
  const last = items[items.length - 1];
  if (v2) {
    head.push(textElement("KeyCount", items.length));
    if (token !== undefined) head.push(textElement("ContinuationToken", token));
    if (marker !== undefined) head.push(textElement("StartAfter", name(marker)));
    if (truncated) head.push(textElement("NextContinuationToken", encodeToken(last)));
  } else {
    head.push(textElement("Marker", name(marker ?? "")));
    if (truncated && delimiter !== "") {
      head.push(textElement("NextMarker", name("key" in last ? last.key : last.prefix)));
    }
  }
  return xmlResponse(xmlDocument("ListBucketResult", [...head, ...contents, ...commons]));
}

/**
 * What the S3 face keeps with each object it writes, in the store's opaque
 * metadata blob (committed in the same transaction as the bytes): the MD5
 * ETag, the part count of a multipart upload, the Content-Type and the
 * `x-amz-meta-*` user metadata.
 *
 * Layout, version 1: `u8 version, 16-byte MD5, u16 parts (0: a single PUT),
 * u8 n + Content-Type, u8 count, then per field u8 n + name, u16 n + value`.
 * An object without a blob (written by the native API) has the native ETag (objects/etag.ts).
 *
 * @module
 */
import { MAX_META_BYTES } from "../storage/objects/record.ts";
import type { ObjectInfo } from "../storage/objects/store.ts";
import { S3Error } from "./errors.ts";

/** S3's Content-Type of an object stored without one. */
export const DEFAULT_CONTENT_TYPE = "binary/octet-stream";
const VERSION = 1;

/** The S3 description of an object. */
export interface S3Meta {
  md5: Uint8Array;
  /** Parts of a multipart upload; 0 for a single PUT. */
  parts: number;
  contentType: string;
  /** `x-amz-meta-*` fields, names lowercase without the prefix. */
  user: Array<[string, string]>;
}

/**
 * Encodes `meta` as the store's blob.
 *
 * @throws S3Error `MetadataTooLarge` when it does not fit the store's blob.
 * @example
 * ```ts
 * const md5 = new Uint8Array(16);
 * const blob = encodeMeta({ md5, parts: 0, contentType: "text/plain", user: [] });
 * ```
 */
export function encodeMeta(meta: S3Meta): Uint8Array {
  const enc = new TextEncoder();
  const type = enc.encode(meta.contentType);
  const user = meta.user.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  const size = 1 + 16 + 2 + 1 + type.length + 1 +
    user.reduce((n, [k, v]) => n + 1 + k.length + 2 + v.length, 0);
  if (
    size > MAX_META_BYTES || type.length > 255 || user.length > 255 ||
    user.some(([k]) => k.length > 255)
  ) {
    throw new S3Error(
      "MetadataTooLarge",
      `Content-Type and x-amz-meta-* headers take ${size} bytes; at most ${MAX_META_BYTES} are kept`,
    );
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = VERSION;
  out.set(meta.md5, 1);
  view.setUint16(17, meta.parts, true);
  let at = 19;
  out[at++] = type.length;
  out.set(type, at);
  at += type.length;
  out[at++] = user.length;
  for (const [k, v] of user) {
    out[at++] = k.length;
    out.set(k, at);
    at += k.length;
    view.setUint16(at, v.length, true);
    out.set(v, at + 2);
    at += 2 + v.length;
  }
  return out;
}

/**
 * Decodes a blob written by {@link encodeMeta}; null for none or a version
 * this code does not know (treated as an object without S3 metadata).
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const meta = decodeMeta(store.stat("b/k")?.meta ?? null);
 * ```
 */
export function decodeMeta(blob: Uint8Array | null): S3Meta | null {
  if (blob === null || blob.length < 21 || blob[0] !== VERSION) return null;
  const dec = new TextDecoder();
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  let at = 19;
  const typeLength = blob[at++];
  const contentType = dec.decode(blob.subarray(at, at + typeLength));
  at += typeLength;
  const count = blob[at++];
  const user: Array<[string, string]> = [];
  for (let i = 0; i < count; i++) {
    const kn = blob[at++];
    const k = dec.decode(blob.subarray(at, at + kn));
    at += kn;
    const vn = view.getUint16(at, true);
    user.push([k, dec.decode(blob.subarray(at + 2, at + 2 + vn))]);
    at += 2 + vn;
  }
  return { md5: blob.slice(1, 17), parts: view.getUint16(17, true), contentType, user };
}

/**
 * The S3 ETag of an object (unquoted): its MD5, with `-N` after a multipart
 * upload; the native ETag for an object the S3 face did not write.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const etag = s3Etag(store.stat("b/k")!);
 * ```
 */
export function s3Etag(info: ObjectInfo): string {
  const meta = decodeMeta(info.meta);
  if (!meta) return info.etag;
  return hex(meta.md5) + (meta.parts > 0 ? `-${meta.parts}` : "");
}

/**
 * Lowercase hex of `bytes`.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([1, 255])); // "01ff"
 * ```
 */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

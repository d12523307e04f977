/**
 * The S3 face's request handler: path-style addressing (`/BUCKET/KEY`), SigV4
 * on every request, then the operation the method, path and subresource name.
 * Errors are S3 XML documents ({@link errorResponse}).
 *
 * @module
 */
import { bucketLocation, createBucket, deleteBucket, headBucket, listBuckets } from "./buckets.ts";
import type { S3Context, S3Request } from "./context.ts";
import { errorResponse, S3Error } from "./errors.ts";
import { listObjects } from "./list.ts";
import {
  abortUpload,
  completeUpload,
  createUpload,
  dropBucketUploads,
  listParts,
  listUploads,
  uploadPart,
} from "./multipart.ts";
import { deleteObject, deleteObjects, getObject, putObject } from "./objects.ts";
import { type Credentials, decode, parseQuery, verifyRequest } from "./sigv4.ts";

/** Subresources S3 has and this face does not: a clear 501 rather than a wrong answer. */
const UNSUPPORTED = new Set([
  "acl",
  "accelerate",
  "analytics",
  "cors",
  "encryption",
  "intelligent-tiering",
  "inventory",
  "legal-hold",
  "lifecycle",
  "logging",
  "metrics",
  "notification",
  "object-lock",
  "ownershipControls",
  "policy",
  "publicAccessBlock",
  "replication",
  "requestPayment",
  "restore",
  "retention",
  "select",
  "tagging",
  "torrent",
  "versioning",
  "versions",
  "website",
]);

/**
 * The S3 handler of `ctx`, for requests signed with `credentials`.
 *
 * @example
 * ```ts
 * const handler = createS3Handler(ctx, { accessKey: "AK", secretKey: "SK" });
 * Deno.serve({ hostname: "127.0.0.1", port: 9000 }, handler);
 * ```
 */
export function createS3Handler(
  ctx: S3Context,
  credentials: Credentials,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    try {
      const verified = verifyRequest(req, credentials);
      const path = url.pathname.slice(1);
      const slash = path.indexOf("/");
      const r: S3Request = {
        req,
        method: req.method,
        bucket: decode(slash < 0 ? path : path.slice(0, slash)),
        key: slash < 0 ? "" : decode(path.slice(slash + 1)),
        query: new Map(parseQuery(url.search.slice(1))),
        verified,
      };
      for (const name of r.query.keys()) {
        if (UNSUPPORTED.has(name)) {
          throw new S3Error("NotImplemented", `the ?${name} subresource is not implemented`);
        }
      }
      return await route(ctx, r);
    } catch (e) {
      await req.body?.cancel().catch(() => {});
      return errorResponse(e, req.method, url.pathname, ctx.logger);
    }
  };
}

function route(ctx: S3Context, r: S3Request): Response | Promise<Response> {
  const q = r.query;
  const m = r.method;
  if (r.bucket === "") {
    if (m === "GET") return listBuckets(ctx);
    throw notAllowed(m, "GET");
  }
  if (r.key === "") {
    switch (m) {
      case "PUT":
        return createBucket(ctx, r);
      case "HEAD":
        return headBucket(ctx, r);
      case "DELETE":
        return deleteBucket(ctx, r, (b) => dropBucketUploads(ctx.store, b));
      case "GET":
        if (q.has("location")) return bucketLocation(ctx, r);
        if (q.has("uploads")) return listUploads(ctx, r);
        return listObjects(ctx, r);
      case "POST":
        if (q.has("delete")) return deleteObjects(ctx, r);
    }
    throw notAllowed(m, "GET, HEAD, PUT, DELETE, POST ?delete");
  }
  switch (m) {
    case "PUT":
      return q.has("uploadId") ? uploadPart(ctx, r) : putObject(ctx, r);
    case "GET":
      return q.has("uploadId") ? listParts(ctx, r) : getObject(ctx, r);
    case "HEAD":
      return getObject(ctx, r);
    case "DELETE":
      return q.has("uploadId") ? abortUpload(ctx, r) : deleteObject(ctx, r);
    case "POST":
      if (q.has("uploads")) return createUpload(ctx, r);
      if (q.has("uploadId")) return completeUpload(ctx, r);
  }
  throw notAllowed(m, "GET, HEAD, PUT, DELETE, POST ?uploads|?uploadId");
}

function notAllowed(method: string, allowed: string): S3Error {
  return new S3Error("MethodNotAllowed", `${method} is not allowed on this resource`, {
    Method: method,
    Allow: allowed,
  });
}

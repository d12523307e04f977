/**
 * The S3 face's request handler: path-style addressing (`/BUCKET/KEY`), SigV4
 * on every request, then the operation the method, path and subresource name.
 * Errors are S3 XML documents ({@link errorResponse}).
 *
 * @module
 */
import { bucketLocation, createBucket, deleteBucket, headBucket, listBuckets } from "./buckets.ts";
import type { S3Context, S3Request } from "./context.ts";
import { mirrorHeader } from "../http/mirror-header.ts";
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
import { readsRefused } from "../storage/objects/catch-up.ts";

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

/** An operation's handler. */
type Handler = (ctx: S3Context, r: S3Request) => Response | Promise<Response>;

/** Every operation the face serves, by S3's name for it (the `op` label of its metrics). */
const OPERATIONS = {
  ListBuckets: (ctx) => listBuckets(ctx),
  CreateBucket: createBucket,
  HeadBucket: headBucket,
  DeleteBucket: (ctx, r) => deleteBucket(ctx, r, (b) => dropBucketUploads(ctx.store, b)),
  GetBucketLocation: bucketLocation,
  ListMultipartUploads: listUploads,
  ListObjects: listObjects,
  ListObjectsV2: listObjects,
  DeleteObjects: deleteObjects,
  PutObject: putObject,
  CopyObject: putObject, // putObject copies when x-amz-copy-source is set
  UploadPart: uploadPart,
  ListParts: listParts,
  GetObject: getObject,
  HeadObject: getObject,
  DeleteObject: deleteObject,
  AbortMultipartUpload: abortUpload,
  CreateMultipartUpload: createUpload,
  CompleteMultipartUpload: completeUpload,
} satisfies Record<string, Handler>;

/** S3's name of an operation this face serves. */
export type S3Operation = keyof typeof OPERATIONS;

/**
 * The S3 handler of `ctx`, for requests signed with `credentials`.
 *
 * @example
 * ```ts
 * import type { S3Context } from "./context.ts";
 * declare const ctx: S3Context;
 * const handler = createS3Handler(ctx, { accessKey: "AK", secretKey: "SK" });
 * Deno.serve({ hostname: "127.0.0.1", port: 9000 }, handler);
 * ```
 */
export function createS3Handler(
  ctx: S3Context,
  credentials: Credentials,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const started = performance.now();
    const url = new URL(req.url);
    // The `op` label; "unknown" for a request that names no operation served here.
    let op: S3Operation | "unknown" = "unknown";
    let res: Response;
    try {
      const path = url.pathname.slice(1);
      const slash = path.indexOf("/");
      const target: Target = {
        req,
        method: req.method,
        bucket: decode(slash < 0 ? path : path.slice(0, slash)),
        key: slash < 0 ? "" : decode(path.slice(slash + 1)),
        query: new Map(parseQuery(url.search.slice(1))),
      };
      const named = operationOf(target);
      const unsupported = [...target.query.keys()].find((name) => UNSUPPORTED.has(name));
      if (typeof named === "string" && unsupported === undefined) op = named;
      const r: S3Request = {
        ...target,
        verified: verifyRequest(req, credentials),
        mirrored: null,
      };
      if (unsupported !== undefined) {
        throw new S3Error("NotImplemented", `the ?${unsupported} subresource is not implemented`);
      }
      if (named instanceof S3Error) throw named;
      // A destination in a catch-up holds no complete image: nothing of it is served.
      const catchUp = ctx.store.catchUp;
      if (catchUp !== null && (req.method === "GET" || req.method === "HEAD")) {
        throw readsRefused(catchUp);
      }
      res = await OPERATIONS[named](ctx, r);
      // The one place every acknowledged write's response gets the header.
      if (r.mirrored !== null) {
        const header = mirrorHeader(ctx.mirror === true, r.mirrored);
        for (const [name, value] of Object.entries(header)) res.headers.set(name, value);
      }
    } catch (e) {
      await req.body?.cancel().catch(() => {});
      res = errorResponse(e, req.method, url.pathname, ctx.logger);
    }
    ctx.metrics?.request("s3", op, res.status, (performance.now() - started) / 1000);
    return res;
  };
}

/** A request before its signature is checked. */
type Target = Omit<S3Request, "verified" | "mirrored">;

/** The operation a request names, or the MethodNotAllowed error saying what its resource allows. */
function operationOf(r: Target): S3Operation | S3Error {
  const q = r.query;
  const m = r.method;
  if (r.bucket === "") {
    if (m === "GET") return "ListBuckets";
    return notAllowed(m, "GET");
  }
  if (r.key === "") {
    switch (m) {
      case "PUT":
        return "CreateBucket";
      case "HEAD":
        return "HeadBucket";
      case "DELETE":
        return "DeleteBucket";
      case "GET":
        if (q.has("location")) return "GetBucketLocation";
        if (q.has("uploads")) return "ListMultipartUploads";
        return q.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
      case "POST":
        if (q.has("delete")) return "DeleteObjects";
    }
    return notAllowed(m, "GET, HEAD, PUT, DELETE, POST ?delete");
  }
  switch (m) {
    case "PUT":
      if (q.has("uploadId")) return "UploadPart";
      return r.req.headers.has("x-amz-copy-source") ? "CopyObject" : "PutObject";
    case "GET":
      return q.has("uploadId") ? "ListParts" : "GetObject";
    case "HEAD":
      return "HeadObject";
    case "DELETE":
      return q.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
    case "POST":
      if (q.has("uploads")) return "CreateMultipartUpload";
      if (q.has("uploadId")) return "CompleteMultipartUpload";
  }
  return notAllowed(m, "GET, HEAD, PUT, DELETE, POST ?uploads|?uploadId");
}

function notAllowed(method: string, allowed: string): S3Error {
  return new S3Error("MethodNotAllowed", `${method} is not allowed on this resource`, {
    Method: method,
    Allow: allowed,
  });
}

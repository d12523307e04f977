/**
 * The S3 face's errors: S3's own codes and statuses, answered as S3's XML
 * error document. The one map from domain codes ({@link RefsyncError} of
 * `src/errors/mod.ts`) to S3 codes is here; anything else is a logged 500
 * `InternalError`.
 *
 * @module
 */
import { type ErrorCode, errorMessage, RefsyncError } from "../errors/mod.ts";
import type { Logger } from "../logging/mod.ts";
import { xmlDocument } from "./xml.ts";

/** S3 error codes this face answers, with their HTTP status. */
export const S3_STATUS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  AuthorizationQueryParametersError: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InsufficientStorage: 507,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MetadataTooLarge: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  OperationAborted: 409,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  RequestTimeout: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
} as const;

/** An S3 error code. */
export type S3Code = keyof typeof S3_STATUS;

/** The S3 code of each domain error code. */
const FROM_DOMAIN: Readonly<Record<ErrorCode, S3Code>> = {
  bad_request: "InvalidRequest",
  bad_key: "InvalidArgument",
  bad_range: "InvalidArgument",
  unauthorized: "AccessDenied",
  forbidden: "AccessDenied",
  fenced: "AccessDenied",
  not_found: "NoSuchKey",
  method_not_allowed: "MethodNotAllowed",
  request_timeout: "RequestTimeout",
  conflict: "OperationAborted",
  length_required: "MissingContentLength",
  precondition_failed: "PreconditionFailed",
  too_large: "EntityTooLarge",
  range_not_satisfiable: "InvalidRange",
  unavailable: "ServiceUnavailable",
  no_space: "InsufficientStorage",
  internal: "InternalError",
  corrupt: "InternalError",
};

/**
 * A failure answered with an S3 code; `fields` become extra elements of the
 * error document (e.g. `Key`, `BucketName`).
 *
 * @example
 * ```ts
 * throw new S3Error("NoSuchBucket", "The specified bucket does not exist", { BucketName: "b" });
 * ```
 */
export class S3Error extends Error {
  readonly code: S3Code;
  readonly fields: Record<string, string>;

  constructor(code: S3Code, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = "S3Error";
    this.code = code;
    this.fields = fields;
  }

  /** The HTTP status of its code. */
  get status(): number {
    return S3_STATUS[this.code];
  }
}

/**
 * `e` as an S3 error: itself, the S3 code of a domain error, or null for an
 * internal failure.
 *
 * @example
 * ```ts
 * import { RefsyncError } from "../errors/mod.ts";
 * asS3Error(new RefsyncError("too_large", "5 GiB at most"))?.code; // "EntityTooLarge"
 * ```
 */
export function asS3Error(e: unknown): S3Error | null {
  if (e instanceof S3Error) return e;
  if (e instanceof RefsyncError) return new S3Error(FROM_DOMAIN[e.code], e.message);
  return null;
}

/**
 * The answer to `e` for a request to `resource`: S3's XML error document with
 * the code's status (no body for HEAD), or a logged 500.
 *
 * @example
 * ```ts
 * import { rootLogger } from "../logging/mod.ts";
 * const logger = rootLogger();
 * const res = errorResponse(new S3Error("NoSuchKey", "no such key"), "GET", "/b/k", logger);
 * ```
 */
export function errorResponse(
  e: unknown,
  method: string,
  resource: string,
  logger: Logger,
): Response {
  let err = asS3Error(e);
  if (err === null) {
    logger.error("s3.internal_error", {
      method,
      resource,
      cause: errorMessage(e),
      stack: e instanceof Error ? e.stack : undefined,
    });
    err = new S3Error("InternalError", `internal error: ${errorMessage(e)}`);
  }
  const headers: Record<string, string> = { "Content-Type": "application/xml" };
  if (err.code === "ServiceUnavailable") headers["Retry-After"] = "1";
  if (err.code === "MethodNotAllowed" && err.fields.Allow) headers["Allow"] = err.fields.Allow;
  const body = method === "HEAD" ? null : xmlDocument("Error", {
    Code: err.code,
    Message: err.message,
    ...err.fields,
    Resource: resource,
    RequestId: crypto.randomUUID(),
  });
  return new Response(body, { status: err.status, headers });
}

/**
 * AWS Signature Version 4 as S3 checks it: the `Authorization` header and
 * presigned URLs (query parameters), with the signing key derived from the
 * secret, the request's date, region and service, and the seed signature that
 * `aws-chunked` bodies chain their chunk signatures from. Any region is
 * accepted: the appliance serves one, whatever the client calls it.
 *
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { S3Error } from "./errors.ts";

/** An access key and its secret. */
export interface Credentials {
  accessKey: string;
  secretKey: string;
}

/** How the request's payload is protected. */
export type PayloadMode =
  | "unsigned"
  | "sha256"
  | "streaming-signed"
  | "streaming-signed-trailer"
  | "streaming-unsigned-trailer";

/** What the chunk signatures of an `aws-chunked` body are checked with. */
export interface ChunkSigning {
  key: Uint8Array;
  amzDate: string;
  scope: string;
  /** The request's own signature: the first chunk's "previous signature". */
  seed: string;
}

/** A request whose signature checked out. */
export interface Verified {
  payload: PayloadMode;
  /** Hex SHA-256 the body must have (mode `sha256`). */
  sha256?: string;
  /** For the streaming modes. */
  chunks: ChunkSigning;
}

/** The parts of a request the signature covers. */
export interface SignedRequest {
  method: string;
  url: string;
  headers: Headers;
}

/** Largest accepted clock difference, as S3 (15 minutes). */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** Longest presigned URL lifetime, as S3 (7 days). */
const MAX_EXPIRES_S = 7 * 24 * 3600;
const ALGORITHM = "AWS4-HMAC-SHA256";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const PAYLOAD_MODES: Record<string, PayloadMode> = {
  "UNSIGNED-PAYLOAD": "unsigned",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD": "streaming-signed",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER": "streaming-signed-trailer",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER": "streaming-unsigned-trailer",
};

/**
 * S3's URI encoding: every byte but `A-Z a-z 0-9 - . _ ~` as `%XX`
 * (uppercase), and `/` too unless `keepSlash`.
 *
 * @example
 * ```ts
 * uriEncode("a b/c*", true); // "a%20b/c%2A"
 * ```
 */
export function uriEncode(s: string, keepSlash: boolean): string {
  const out = encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
  return keepSlash ? out.replace(/%2F/g, "/") : out;
}

/**
 * Checks the SigV4 signature of `req` (header or presigned) against `creds`.
 *
 * @throws S3Error `AccessDenied` (anonymous, expired), `InvalidAccessKeyId`,
 *   `SignatureDoesNotMatch`, `RequestTimeTooSkewed`, `AuthorizationHeaderMalformed`,
 *   `AuthorizationQueryParametersError`, `InvalidRequest`.
 * @example
 * ```ts
 * declare const req: Request;
 * const verified = verifyRequest(req, { accessKey: "AK", secretKey: "SK" });
 * if (verified.payload === "sha256") console.log("body must hash to", verified.sha256);
 * ```
 */
export function verifyRequest(
  req: SignedRequest,
  creds: Credentials,
  now: number = Date.now(),
): Verified {
  const url = new URL(req.url);
  const query = parseQuery(url.search.slice(1));
  const auth = req.headers.get("authorization");
  let parts: AuthParts;
  let presigned = false;
  if (auth !== null && auth.startsWith(`${ALGORITHM} `)) {
    parts = parseAuthorization(auth);
  } else if (query.some(([k]) => k === "X-Amz-Algorithm")) {
    parts = parsePresigned(query, now);
    presigned = true;
  } else if (auth !== null || query.some(([k]) => k === "AWSAccessKeyId")) {
    throw new S3Error(
      "InvalidRequest",
      "Only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported; configure the client for " +
        "s3v4 (boto3: Config(signature_version='s3v4'))",
    );
  } else {
    throw new S3Error("AccessDenied", "Anonymous access is not allowed; sign the request (SigV4)");
  }
  const [accessKey, date, region, service, terminal] = parts.credential.split("/");
  if (terminal !== "aws4_request" || !/^\d{8}$/.test(date ?? "") || !region || !service) {
    throw malformed(
      presigned,
      `the credential '${parts.credential}' is not KEY/DATE/REGION/s3/aws4_request`,
    );
  }
  if (accessKey !== creds.accessKey) {
    throw new S3Error(
      "InvalidAccessKeyId",
      "The AWS Access Key Id you provided does not exist in our records.",
      { AWSAccessKeyId: accessKey },
    );
  }
  if (service !== "s3") throw malformed(presigned, `the service is '${service}', not s3`);
  const amzDate = presigned ? parts.amzDate! : req.headers.get("x-amz-date") ?? "";
  const time = parseAmzDate(amzDate);
  if (time === null) {
    throw new S3Error("AccessDenied", "The request needs a valid x-amz-date (YYYYMMDDTHHMMSSZ)");
  }
  if (amzDate.slice(0, 8) !== date) {
    throw malformed(presigned, `the credential date ${date} is not the request date ${amzDate}`);
  }
  if (Math.abs(now - time) > MAX_SKEW_MS && !(presigned && time < now)) {
    throw new S3Error(
      "RequestTimeTooSkewed",
      "The difference between the request time and the current time is too large.",
      { RequestTime: amzDate, ServerTime: new Date(now).toISOString() },
    );
  }
  if (!parts.signedHeaders.includes("host")) {
    throw malformed(presigned, "the signed headers must include host");
  }
  let payloadHash: string;
  if (presigned) {
    payloadHash = query.find(([k]) => k === "X-Amz-Content-Sha256")?.[1] ?? "UNSIGNED-PAYLOAD";
  } else {
    const h = req.headers.get("x-amz-content-sha256");
    if (h === null) {
      throw new S3Error(
        "InvalidRequest",
        "Missing required header for this request: x-amz-content-sha256",
      );
    }
    payloadHash = h;
  }
  const payload = PAYLOAD_MODES[payloadHash] ??
    (/^[0-9a-f]{64}$/.test(payloadHash) ? "sha256" : null);
  if (payload === null) {
    throw new S3Error(
      "InvalidArgument",
      `x-amz-content-sha256 '${payloadHash}' is not a SHA-256 or a supported payload mode`,
    );
  }
  const canonical = [
    req.method,
    canonicalUri(url.pathname),
    canonicalQuery(presigned ? query.filter(([k]) => k !== "X-Amz-Signature") : query),
    ...parts.signedHeaders.map((h) => `${h}:${canonicalHeaderValue(req.headers.get(h))}`),
    "",
    parts.signedHeaders.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const key = signingKey(creds.secretKey, date, region, service);
  const expected = hmacHex(key, `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`);
  if (!sameHex(expected, parts.signature)) {
    throw new S3Error(
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. " +
        "Check your key and signing method.",
      {
        AWSAccessKeyId: accessKey,
        StringToSign: `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`,
      },
    );
  }
  return {
    payload,
    sha256: payload === "sha256" ? payloadHash : undefined,
    chunks: { key, amzDate, scope, seed: parts.signature },
  };
}

/**
 * The expected signature of the next `aws-chunked` chunk, given the previous
 * signature and the chunk's hex SHA-256.
 *
 * @example
 * ```ts
 * declare const verified: { chunks: ChunkSigning };
 * declare const previous: string;
 * declare const chunk: Uint8Array;
 * declare const sha256Hex: (bytes: Uint8Array) => string;
 * const sig = chunkSignature(verified.chunks, previous, sha256Hex(chunk));
 * ```
 */
export function chunkSignature(s: ChunkSigning, previous: string, chunkSha256: string): string {
  return hmacHex(
    s.key,
    `${ALGORITHM}-PAYLOAD\n${s.amzDate}\n${s.scope}\n${previous}\n${EMPTY_SHA256}\n${chunkSha256}`,
  );
}

/**
 * The expected signature of the trailer of a signed `aws-chunked` body.
 *
 * @example
 * ```ts
 * declare const verified: { chunks: ChunkSigning };
 * declare const lastChunkSignature: string;
 * const sig = trailerSignature(verified.chunks, lastChunkSignature, "x-amz-checksum-crc32:AAAAAA==\n");
 * ```
 */
export function trailerSignature(s: ChunkSigning, previous: string, trailer: string): string {
  return hmacHex(
    s.key,
    `${ALGORITHM}-TRAILER\n${s.amzDate}\n${s.scope}\n${previous}\n${sha256Hex(trailer)}`,
  );
}

/**
 * Constant-time comparison of two hex signatures.
 *
 * @example
 * ```ts
 * sameHex("ab", "ab"); // true
 * ```
 */
export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Hex SHA-256 of `data`.
 *
 * @example
 * ```ts
 * sha256Hex(""); // "e3b0c442..."
 * ```
 */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

interface AuthParts {
  credential: string;
  signedHeaders: string[];
  signature: string;
  amzDate?: string;
}

function parseAuthorization(header: string): AuthParts {
  const fields = new Map<string, string>();
  for (const part of header.slice(ALGORITHM.length + 1).split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw new S3Error(
      "AuthorizationHeaderMalformed",
      "The authorization header needs Credential, SignedHeaders and Signature",
    );
  }
  return { credential, signedHeaders: signedHeaders.split(";"), signature };
}

function parsePresigned(query: Array<[string, string]>, now: number): AuthParts {
  const get = (k: string) => query.find(([name]) => name === k)?.[1];
  if (get("X-Amz-Algorithm") !== ALGORITHM) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      `X-Amz-Algorithm must be ${ALGORITHM}`,
    );
  }
  const credential = get("X-Amz-Credential");
  const signedHeaders = get("X-Amz-SignedHeaders");
  const signature = get("X-Amz-Signature");
  const amzDate = get("X-Amz-Date");
  const expires = Number(get("X-Amz-Expires"));
  if (!credential || !signedHeaders || !signature || !amzDate) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      "A presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature",
    );
  }
  if (!Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_S) {
    throw new S3Error(
      "AuthorizationQueryParametersError",
      `X-Amz-Expires must be an integer from 1 to ${MAX_EXPIRES_S}`,
    );
  }
  const time = parseAmzDate(amzDate);
  if (time !== null && now > time + expires * 1000) {
    throw new S3Error("AccessDenied", "Request has expired", {
      X_Amz_Expires: String(expires),
      Expires: new Date(time + expires * 1000).toISOString(),
    });
  }
  return { credential, signedHeaders: signedHeaders.split(";"), signature, amzDate };
}

function malformed(presigned: boolean, why: string): S3Error {
  return new S3Error(
    presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed",
    why,
  );
}

/** `YYYYMMDDTHHMMSSZ` as ms since the epoch, or null. */
function parseAmzDate(s: string): number | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return null;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(t) ? null : t;
}

/**
 * Raw query pairs, percent-decoded (`+` is a plus sign: S3 clients encode a space `%20`).
 *
 * @example
 * ```ts
 * parseQuery("prefix=a%2Fb&delimiter=%2F&uploads"); // [["prefix","a/b"],["delimiter","/"],["uploads",""]]
 * ```
 */
export function parseQuery(raw: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    out.push([decode(k), decode(v)]);
  }
  return out;
}

/**
 * Percent-decodes `s`. @throws S3Error `InvalidArgument` when it is not valid UTF-8.
 *
 * @example
 * ```ts
 * decode("a%20b"); // "a b"
 * ```
 */
export function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new S3Error("InvalidArgument", `'${s}' is not valid percent-encoded UTF-8`);
  }
}

function canonicalUri(pathname: string): string {
  return pathname.split("/").map((seg) => uriEncode(decode(seg), false)).join("/");
}

function canonicalQuery(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

function canonicalHeaderValue(v: string | null): string {
  return (v ?? "").trim().replace(/\s+/g, " ");
}

const keyCache = new Map<string, Uint8Array>();

function signingKey(secret: string, date: string, region: string, service: string): Uint8Array {
  const id = `${date}/${region}/${service}/${sha256Hex(secret)}`;
  let key = keyCache.get(id);
  if (!key) {
    const kDate = hmac(new TextEncoder().encode(`AWS4${secret}`), date);
    key = hmac(hmac(hmac(kDate, region), service), "aws4_request");
    if (keyCache.size >= 64) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(id, key);
  }
  return key;
}

function hmac(key: Uint8Array, data: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

function hmacHex(key: Uint8Array, data: string): string {
  return createHmac("sha256", key).update(data).digest("hex");
}

/**
 * What every S3 operation gets: the appliance side of it (store, limits,
 * whether writes are allowed) and the parsed request.
 *
 * @module
 */
import type { Logger } from "../logging/mod.ts";
import type { ClientMetrics } from "../metrics/appliance.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import type { Verified } from "./sigv4.ts";

/** The appliance side of the S3 face. */
export interface S3Context {
  store: ObjectStore;
  /** Largest object (`EntityTooLarge` beyond), as the native API's --max-object-bytes. */
  maxObjectBytes: number;
  /**
   * Resolves when a write may be logged now; rejects with the reason when not
   * (a destination serving its last CP: `forbidden`; a fenced source: `fenced`;
   * no link to the destination: `unavailable`), exactly as the native API.
   */
  admitWrite: () => Promise<void>;
  /** A destination mirrors this source: acknowledged writes carry `Refsync-Mirror`. */
  mirror?: boolean;
  /** Where requests and object bytes are counted, if anywhere. */
  metrics?: ClientMetrics;
  /** ms a request body may send nothing before `RequestTimeout` (--body-idle-timeout). */
  bodyIdleTimeoutMs?: number;
  logger: Logger;
}

/** A signed S3 request, parsed. */
export interface S3Request {
  req: Request;
  method: string;
  /** The bucket of the path, or "" for the service (ListBuckets). */
  bucket: string;
  /** The object key of the path, or "" for a bucket request. */
  key: string;
  /** Query parameters, percent-decoded (`+` is a plus sign). */
  query: Map<string, string>;
  verified: Verified;
  /**
   * Whether every store write this request made was acknowledged mirrored
   * (in sync), null when it made none: the handler sets `Refsync-Mirror` from
   * it ({@link noteWrite}).
   */
  mirrored: boolean | null;
}

/**
 * Records that `r` made a store write acknowledged with `mirrored`.
 *
 * @example
 * ```ts
 * declare const r: S3Request;
 * noteWrite(r, false); // the response says Refsync-Mirror: out-of-sync
 * ```
 */
export function noteWrite(r: S3Request, mirrored: boolean): void {
  r.mirrored = (r.mirrored ?? true) && mirrored;
}

/**
 * Replication byte counters, kept where the bytes are sent (source) or
 * received (destination), and reported by `GET /v1/admin/stats` as `wire`.
 *
 * @module
 */

/** CP blocks sent, by record kind. */
export interface CpBlockCounts {
  data: number;
  logRef: number;
  patch: number;
  copy: number;
  zero: number;
  diff: number;
}

/** Bytes on the wire between the appliances. */
export interface WireStats {
  /** Log frame bytes (request bodies) forwarded or received. */
  logBytes: number;
  logFrames: number;
  /** CP sync request body bytes. */
  cpSyncBytes: number;
  /** Catch-up request body bytes: baselines (from an empty destination) and resyncs. */
  baselineBytes: number;
  resyncBytes: number;
  cpBlocks: CpBlockCounts;
}

/**
 * Fresh zeroed counters.
 *
 * @example
 * ```ts
 * const wire = newWireStats();
 * wire.logBytes += 4096;
 * ```
 */
export function newWireStats(): WireStats {
  return {
    logBytes: 0,
    logFrames: 0,
    cpSyncBytes: 0,
    baselineBytes: 0,
    resyncBytes: 0,
    cpBlocks: { data: 0, logRef: 0, patch: 0, copy: 0, zero: 0, diff: 0 },
  };
}

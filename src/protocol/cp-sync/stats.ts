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
  /** Log request body bytes as sent or received (after link compression). */
  logBytes: number;
  /** Log frame bytes before compression: `logBytes / logBytesRaw` is the link's ratio. */
  logBytesRaw: number;
  logFrames: number;
  /** Log batches that went on the log stream (src/protocol/log-stream), not as HTTP requests. */
  logStreamBatches: number;
  /** Log batches sent before the one before was answered (the log stream's window; source only). */
  logBatchesOverlapped: number;
  /** The zstd level log batches are compressed at now (the source's; 1 until it changes). */
  linkLevel: number;
  /** Pieces of log payloads forwarded as references (a record's bytes or a CP block), not bytes. */
  logRefBlocks: number;
  /** Log bytes those references saved: whole frames' length minus their reference frames'. */
  logRefBytes: number;
  /** Of those pieces, blocks found off the 4 KiB grid of the payload (shifted content; source only). */
  logShiftedBlocks: number;
  /** CP sync request body bytes as sent or received (after link compression). */
  cpSyncBytes: number;
  /** CP sync record bytes before compression. */
  cpSyncBytesRaw: number;
  cpBlocks: CpBlockCounts;
  /** Catch-up stream bytes of baselines (from CP 0). */
  baselineBytes: number;
  /** Catch-up stream bytes of resyncs (from a CP > 0). */
  resyncBytes: number;
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
    logBytesRaw: 0,
    logFrames: 0,
    logStreamBatches: 0,
    logBatchesOverlapped: 0,
    linkLevel: 1,
    logRefBlocks: 0,
    logRefBytes: 0,
    logShiftedBlocks: 0,
    cpSyncBytes: 0,
    cpSyncBytesRaw: 0,
    cpBlocks: { data: 0, logRef: 0, patch: 0, copy: 0, zero: 0, diff: 0 },
    baselineBytes: 0,
    resyncBytes: 0,
  };
}

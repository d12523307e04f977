/**
 * Builds and sends the CP sync stream of one committed CP: for every written
 * block the cheapest record the destination can verify (LOG_REF runs, PATCH,
 * COPY, DIFF), DATA only where nothing else will do; then FREE and COMMIT.
 * The stream is generated lazily while it is sent, so memory stays bounded
 * whatever the CP's size.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { diffBlocks } from "../../block-index/mod.ts";
import {
  blockCheck,
  type CpRecord,
  encodeRecord,
  MAX_FREE,
  MAX_PIECES,
  runCheck,
} from "../../protocol/cp-sync/records.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { CheckpointResult } from "../../storage/objects/store.ts";
import type { Volume } from "../../storage/volume/volume.ts";

/** How CP blocks travel: by reference where possible, or all as DATA (the prior art). */
export type CpSyncMode = "refs" | "full";

/** A CP sync request carries about this many bytes of records. */
const PART_BYTES = 4 << 20;

/** What the CP sync needs besides the CP itself. */
export interface CpSyncSource {
  volume: Volume;
  mode: CpSyncMode;
  /** Blocks to send as DATA whatever their recipe (the destination asked for them). */
  forceData: Set<number>;
  /**
   * A verified reference (COPY or a one-block LOG_REF) to bytes equal to
   * `digest` that the destination already holds, or null.
   */
  locate?: (digest: Uint8Array, block: number) => CpRecord | null;
}

/**
 * The records of `cp`, in block order.
 *
 * @example
 * ```ts
 * import type { CheckpointResult } from "../../storage/objects/store.ts";
 * import type { Volume } from "../../storage/volume/volume.ts";
 * import type { CpRecord } from "../../protocol/cp-sync/records.ts";
 * declare const cp: CheckpointResult;
 * declare const volume: Volume;
 * declare function send(record: CpRecord): void;
 * for (const record of cpRecords(cp, { volume, mode: "refs", forceData: new Set() })) send(record);
 * ```
 */
export function* cpRecords(cp: CheckpointResult, src: CpSyncSource): Generator<CpRecord> {
  const sb = cp.superblock;
  yield {
    kind: "begin",
    cp: sb.cp,
    pairGeneration: sb.pairGeneration,
    volumeId: sb.volumeId,
    previousDigest: cp.previousDigest,
  };
  const w = cp.written;
  const rows = w.rowsByBlock();
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    const block = w.block(row);
    const asData = (): CpRecord => ({ kind: "data", block, bytes: src.volume.readBlock(block) });
    if (src.mode === "full" || src.forceData.has(block)) {
      yield asData();
      continue;
    }
    const digest = w.digest(row);
    if (w.kind(row) === "meta") {
      // A new node has no previous version: it is a DIFF against zeros (base 0), which
      // carries only its used bytes.
      yield diffOrData(src.volume, block, w.base(row), digest) ?? asData();
      continue;
    }
    const recipe = w.recipe(row);
    if (recipe?.kind === "log") {
      // Coalesce consecutive blocks cut from consecutive 4 KiB of one payload.
      let n = 1;
      while (i + n < rows.length && n < 4096) {
        const next = rows[i + n];
        const r = w.recipe(next);
        if (
          w.block(next) !== block + n || src.forceData.has(block + n) || r?.kind !== "log" ||
          r.lsn !== recipe.lsn || r.payloadOffset !== recipe.payloadOffset + n * BLOCK_SIZE
        ) break;
        n++;
      }
      const digests = new Uint8Array(n * 32);
      for (let k = 0; k < n; k++) digests.set(w.digest(rows[i + k]), k * 32);
      yield {
        kind: "logRef",
        block,
        count: n,
        lsn: recipe.lsn,
        payloadOffset: recipe.payloadOffset,
        check: runCheck(digests),
      };
      i += n - 1;
      continue;
    }
    const found = referenceFor(src, digest, block);
    if (found) {
      yield found;
      continue;
    }
    if (
      recipe?.kind === "patch" && recipe.slices.length <= MAX_PIECES &&
      recipe.slices.length * 16 < BLOCK_SIZE / 2
    ) {
      yield {
        kind: "patch",
        block,
        base: recipe.base,
        check: blockCheck(digest),
        slices: recipe.slices,
      };
      continue;
    }
    yield asData();
  }
  for (let i = 0; i < cp.released.length; i += MAX_FREE) {
    yield { kind: "free", blocks: cp.released.slice(i, i + MAX_FREE) };
  }
  yield { kind: "commit", superblock: cp.superblockBytes };
}

/**
 * A verified reference (COPY, LOG_REF) to bytes the destination holds equal to
 * a data block's `digest`, or null (then the block travels as PATCH or DATA).
 * The one choice for a data block, in a CP sync and a catch-up alike.
 */
export function referenceFor(
  src: Pick<CpSyncSource, "mode" | "forceData" | "locate">,
  digest: Uint8Array,
  block: number,
): CpRecord | null {
  if (src.mode === "full" || src.forceData.has(block)) return null;
  return src.locate?.(digest, block) ?? null;
}

function diffOrData(
  volume: Volume,
  block: number,
  base: number,
  digest: Uint8Array,
): CpRecord | null {
  const next = volume.readBlock(block);
  const old = base === 0 ? new Uint8Array(BLOCK_SIZE) : volume.readBlock(base);
  const ranges = diffBlocks(old, next);
  const size = ranges.reduce((n, [s, e]) => n + 4 + e - s, 0);
  if (ranges.length > MAX_PIECES || size > BLOCK_SIZE / 2) return null;
  return {
    kind: "diff",
    block,
    base,
    check: blockCheck(digest),
    ranges: ranges.map(([s, e]) => ({ at: s, bytes: next.slice(s, e) })),
  };
}

/**
 * The CP sync stream cut into parts of about `partBytes` (whole records each),
 * their blocks counted into `wire` as they are produced (their bytes by the client that sends them). Each part travels as one request
 * with a Content-Length: Deno's server handles a long chunked request body
 * that is read slowly at a cost quadratic in its size (it moves the unread
 * bytes at every read), which made a 1 GiB CP sync of DATA cost ~80 CPU
 * seconds on the destination.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../../protocol/cp-sync/stats.ts";
 * import type { CheckpointResult } from "../../storage/objects/store.ts";
 * declare const cp: CheckpointResult;
 * declare const src: CpSyncSource;
 * declare function post(part: Uint8Array): Promise<void>;
 * const wire = newWireStats();
 * for (const part of cpSyncParts(cp, src, wire)) await post(part);
 * ```
 */
export function* cpSyncParts(
  cp: CheckpointResult,
  src: CpSyncSource,
  wire: WireStats,
  partBytes = PART_BYTES,
): Generator<Uint8Array<ArrayBuffer>> {
  yield* recordParts(
    cpRecords(cp, src),
    (record) => count(wire, record),
    partBytes,
  );
}

/**
 * A stream of records cut into parts of about `partBytes` (whole records
 * each): `onRecord` hears each record as it is encoded. The client counts
 * the bytes of each part as it sends them (after link compression).
 *
 * @example
 * ```ts
 * import type { CpRecord } from "../../protocol/cp-sync/records.ts";
 * declare const records: Iterable<CpRecord>;
 * let sent = 0;
 * for (const part of recordParts(records, () => {})) sent += part.length;
 * ```
 */
export function* recordParts(
  stream: Iterable<CpRecord>,
  onRecord: (record: CpRecord) => void,
  partBytes = PART_BYTES,
): Generator<Uint8Array<ArrayBuffer>> {
  let records: Uint8Array[] = [];
  let size = 0;
  const cut = () => {
    const part = new Uint8Array(size);
    let at = 0;
    for (const r of records) {
      part.set(r, at);
      at += r.length;
    }
    records = [];
    size = 0;
    return part;
  };
  for (const record of stream) {
    onRecord(record);
    const bytes = encodeRecord(record);
    records.push(bytes);
    size += bytes.length;
    if (size >= partBytes) yield cut();
  }
  if (size > 0) yield cut();
}

function count(wire: WireStats, r: CpRecord): void {
  const b = wire.cpBlocks;
  if (r.kind === "data") b.data++;
  else if (r.kind === "logRef") b.logRef += r.count;
  else if (r.kind === "patch") b.patch++;
  else if (r.kind === "copy") b.copy++;
  else if (r.kind === "diff") b.diff++;
}

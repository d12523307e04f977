/**
 * The destination's CP sync applier: rebuilds each block the source wrote from
 * what the destination holds (its log, its volume) or from DATA, verifies every
 * reference, and commits the CP only when its content digest equals the
 * source's. A reference that cannot be resolved or verified is answered with a
 * request for DATA; nothing unverified is ever committed (invariant 6).
 *
 * @module
 */
import { blake3, hashBlocks } from "../block-index/mod.ts";
import { errorMessage, RefsyncError } from "../errors/mod.ts";
import { blockCheck, type CpRecord, readRecords, runCheck } from "../protocol/cp-sync/records.ts";
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { cpContentDigest, nextVolumeDigest } from "../storage/volume/digest.ts";
import { decodeSuperblock } from "../storage/volume/superblock.ts";
import { Bitmap } from "../storage/volume/bitmap.ts";
import { BLOCK_SIZE } from "../storage/volume/types.ts";
import type { CpTransaction } from "../storage/volume/volume.ts";
import { endOfSlice } from "../storage/time-slice.ts";

/** The outcome of one CP sync request. */
export type ApplyResult =
  | { committed: true; cp: number; digest: Uint8Array }
  | { committed: false; need: number[]; reason: string };

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Applies one CP sync stream to `store`'s volume.
 *
 * @example
 * ```ts
 * const result = await applyCpSync(store, request.body!, wire);
 * ```
 */
export async function applyCpSync(
  store: ObjectStore,
  body: ReadableStream<Uint8Array>,
  wire: WireStats,
  signal?: AbortSignal,
): Promise<ApplyResult> {
  const volume = store.volume;
  const committed = volume.superblock;
  let tx: CpTransaction | null = null;
  const need = new Set<number>();
  const reasons: string[] = [];
  const released: number[] = [];
  const fail = (blocks: number[], reason: string) => {
    for (const b of blocks) need.add(b);
    if (reasons.length < 5) reasons.push(reason);
  };
  // The source chooses the blocks; one live in our committed CP would overwrite
  // the image a crash falls back to, and one written twice is ambiguous: the
  // stream is wrong, not this disk.
  const claimed = new Bitmap();
  const claim = (block: number) => {
    if (block < 2 || volume.isLive(block)) {
      throw new RefsyncError(
        "conflict",
        `CP sync writes block ${block}, which is live in CP ${committed.cp} here`,
      );
    }
    if (claimed.has(block)) {
      throw new RefsyncError("conflict", `CP sync writes block ${block} twice`);
    }
    claimed.set(block);
    tx!.claim(block);
  };
  const write = (block: number, bytes: Uint8Array) => {
    claim(block);
    tx!.written.setDigest(tx!.write(block, bytes, "data", 0), blake3(bytes));
  };
  const liveBlock = (block: number): Uint8Array | null =>
    block === 0
      ? new Uint8Array(BLOCK_SIZE)
      : volume.isLive(block)
      ? volume.readBlock(block)
      : null;

  try {
    for await (const r of decodeRecords(body, wire, signal)) {
      await endOfSlice(store.options.clock); // log forwarding keeps flowing while a big CP is applied
      if (r.kind === "begin") {
        if (tx) throw new RefsyncError("bad_request", "CP sync: BEGIN twice");
        if (r.cp !== committed.cp + 1) {
          throw new RefsyncError(
            "conflict",
            `CP sync for CP ${r.cp}, but this destination is at CP ${committed.cp}; resync from CP ${
              committed.cp + 1
            }`,
          );
        }
        if (r.pairGeneration !== committed.pairGeneration && committed.cp > 0) {
          throw new RefsyncError(
            "conflict",
            `pair generation ${r.pairGeneration} != ${committed.pairGeneration}`,
          );
        }
        if (!bytesEqual(r.previousDigest, committed.volumeDigest)) {
          throw new RefsyncError(
            "conflict",
            `the volumes diverged before CP ${r.cp}: digests differ`,
          );
        }
        tx = volume.beginCp();
        continue;
      }
      if (!tx) throw new RefsyncError("bad_request", "CP sync: a record before BEGIN");
      // Bounded memory: write buffered blocks out as the stream goes, not all at COMMIT.
      if (tx.shouldFlush) tx.flush();
      switch (r.kind) {
        case "data":
          wire.cpBlocks.data++;
          write(r.block, r.bytes.slice());
          break;
        case "logRef": {
          wire.cpBlocks.logRef += r.count;
          const blocks = Array.from({ length: r.count }, (_, i) => r.block + i);
          const run = readLogRun(store, r.lsn, r.payloadOffset, r.count);
          if (run === null) {
            fail(blocks, `LOG_REF to LSN ${r.lsn} not in this log`);
            break;
          }
          const runDigests = hashBlocks(run);
          if (!bytesEqual(runCheck(runDigests), r.check)) {
            fail(blocks, `LOG_REF to LSN ${r.lsn}: content check failed`);
            break;
          }
          blocks.forEach((b, i) => {
            claim(b);
            const row = tx!.write(b, run.slice(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE), "data", 0);
            tx!.written.setDigest(row, runDigests.subarray(i * 32, (i + 1) * 32));
          });
          break;
        }
        case "patch": {
          wire.cpBlocks.patch++;
          const base = liveBlock(r.base);
          if (base === null) {
            fail([r.block], `PATCH base ${r.base} is not live here`);
            break;
          }
          const content = base.slice();
          let ok = true;
          for (const s of r.slices) {
            const bytes = readLogBytes(store, s.lsn, s.payloadOffset, s.length);
            if (bytes === null) {
              ok = false;
              break;
            }
            content.set(bytes, s.at);
          }
          if (!ok) fail([r.block], `PATCH of block ${r.block}: a log slice is missing`);
          else verifyAndWrite(r.block, content, r.check);
          break;
        }
        case "copy": {
          wire.cpBlocks.copy++;
          const from = r.from === 0 ? null : liveBlock(r.from);
          if (from === null) fail([r.block], `COPY from ${r.from}, which is not live here`);
          else verifyAndWrite(r.block, from.slice(), r.check);
          break;
        }
        case "diff": {
          wire.cpBlocks.diff++;
          const base = liveBlock(r.base);
          if (base === null) {
            fail([r.block], `DIFF base ${r.base} is not live here`);
            break;
          }
          const content = base.slice();
          for (const x of r.ranges) content.set(x.bytes, x.at);
          verifyAndWrite(r.block, content, r.check);
          break;
        }
        case "free":
          for (const b of r.blocks) {
            if (!volume.isLive(b)) {
              throw new RefsyncError("conflict", `FREE of block ${b}, which is not live here`);
            }
            released.push(b);
          }
          break;
        case "commit": {
          if (need.size > 0) {
            tx.abort();
            return {
              committed: false,
              need: [...need].sort((a, b) => a - b),
              reason: reasons.join("; "),
            };
          }
          const sb = decodeSuperblock(r.superblock);
          if (sb === null || sb.cp !== tx.cp) {
            throw new RefsyncError("bad_request", "CP sync: the COMMIT superblock is invalid");
          }
          const expected = nextVolumeDigest(
            committed.volumeDigest,
            cpContentDigest(tx.written),
            sb,
          );
          if (!bytesEqual(expected, sb.volumeDigest)) {
            throw new RefsyncError(
              "conflict",
              `CP ${sb.cp}: the applied content digest differs from the source's; not committed`,
            );
          }
          await tx.commitEncoded(r.superblock);
          tx = null;
          store.adoptCommitted(sb.cp, released, sb.lsnCovered);
          return { committed: true, cp: sb.cp, digest: sb.volumeDigest };
        }
      }
    }
    throw new RefsyncError("bad_request", "CP sync stream ended before COMMIT");
  } catch (e) {
    // Storage failures (EIO, ENOSPC, a broken invariant) propagate as what they are.
    tx?.abort();
    throw e;
  }

  function verifyAndWrite(block: number, content: Uint8Array, check: Uint8Array): void {
    const digest = blake3(content);
    if (!bytesEqual(blockCheck(digest), check)) {
      fail([block], `block ${block}: content check failed`);
      return;
    }
    claim(block);
    tx!.written.setDigest(tx!.write(block, content, "data", 0), digest);
  }
}

/**
 * The records of `body`; what the stream itself gets wrong (a malformed or
 * truncated record, a body cut off) is the sender's fault: `bad_request`.
 */
async function* decodeRecords(
  body: ReadableStream<Uint8Array>,
  wire: WireStats,
  signal?: AbortSignal,
): AsyncGenerator<CpRecord> {
  try {
    yield* readRecords(body, (n) => wire.cpSyncBytes += n, signal);
  } catch (e) {
    if (e instanceof RefsyncError) throw e;
    throw new RefsyncError("bad_request", `CP sync: ${errorMessage(e)}`);
  }
}

function readLogBytes(
  store: ObjectStore,
  lsn: number,
  at: number,
  length: number,
): Uint8Array | null {
  const rec = store.log.locate(lsn);
  if (rec === null || at + length > rec.payloadLength) return null;
  return store.log.readPayload(rec.position, at, length);
}

function readLogRun(store: ObjectStore, lsn: number, at: number, count: number): Uint8Array | null {
  return readLogBytes(store, lsn, at, count * BLOCK_SIZE);
}

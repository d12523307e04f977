/**
 * Writing one consistency point: the frozen dirty layer goes from the NVLOG
 * into new volume blocks (copy-on-write), the block maps and the catalog are
 * updated along the changed paths, and each written block gets a recipe that
 * tells the CP sync how the destination can rebuild it from what it holds.
 * Each data block is hashed once, as it is written: its BLAKE3 is both the
 * check in its map entry and its part of the CP digest.
 *
 * @module
 */
import { BLOCK_SIZE, compareBytes } from "../../bytes/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { isZeroBlock } from "../../block-index/mod.ts";
import type { Catalog } from "../catalog/mod.ts";
import { type BlockMap, EMPTY_MAP, MapCursor, updateMap, walkMap } from "../blockmap/blockmap.ts";
import { assertBlock, checkOf, CorruptBlockError } from "../volume/check.ts";
import type { CpTransaction } from "../volume/volume.ts";
import type { LogSlice } from "../volume/written.ts";
import { endOfSlice } from "../time-slice.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import { type BlockPtr, type CheckedPtr, NO_BLOCK } from "../volume/types.ts";
import type { DirtyObject, Extent, LogPosition } from "./overlay.ts";
import { decodeRecord, encodeRecord, type ObjectRecord, UNKNOWN_ETAG } from "./record.ts";

/** Reads payload bytes of a logged record (the NVLOG). */
export interface PayloadReader {
  readPayload(
    position: LogPosition,
    payloadOffset: number,
    length: number,
    into?: Uint8Array,
  ): Uint8Array;
}

/** A log slice of a block, with where its bytes are in this appliance's log. */
interface PlacedSlice extends LogSlice {
  position: LogPosition;
}

/** What a written CP leaves for the commit and for the CP sync. */
export interface CheckpointWrite {
  /** New catalog root. */
  catalogRoot: BlockPtr | null;
  /** All-zero data blocks that became holes. */
  zeroBlocks: number;
}

/**
 * Writes `frozen` (the dirty layer of this CP) through `tx` on top of `catalog`.
 * Yields to the event loop as it goes so writers are not blocked for the whole CP.
 */
export async function writeCheckpoint(
  tx: CpTransaction,
  catalog: Catalog,
  log: PayloadReader,
  frozen: Map<string, DirtyObject>,
  clock: Clock = systemClock,
): Promise<CheckpointWrite> {
  const counts = { zeroBlocks: 0, clock };
  const objects = [...frozen.values()].sort((a, b) => compareBytes(a.keyBytes, b.keyBytes));
  const changes: Array<{ key: Uint8Array; value: Uint8Array | null }> = [];
  for (const d of objects) {
    const old = catalog.get(d.keyBytes);
    const record = old ? decodeRecord(old) : null;
    if (d.deleted) {
      if (record) releaseObject(tx, record.map);
      if (record) changes.push({ key: d.keyBytes, value: null });
      continue;
    }
    let next: ObjectRecord;
    try {
      next = await writeObject(tx, log, d, d.replace ? null : record, counts);
    } catch (e) {
      throw e instanceof CorruptBlockError ? e.of(d.key) : e;
    }
    if (d.replace && record) releaseObject(tx, record.map);
    changes.push({ key: d.keyBytes, value: encodeRecord(next) });
    await pause(tx, clock);
  }
  const catalogRoot = catalog.commit(changes, tx);
  // Every written block has a digest: the CP digest covers them all. Data and map
  // blocks got theirs when written (their map entries carry it); catalog nodes get it here.
  const written = tx.written;
  for (let r = 0; r < written.count; r++) {
    if (!written.hasDigest(r)) written.setDigest(r, blake3(tx.readBlock(written.block(r))));
  }
  return { catalogRoot, zeroBlocks: counts.zeroBlocks };
}

/** Flushes buffered blocks when due and lets requests run between slices of CP work. */
async function pause(tx: CpTransaction, clock: Clock): Promise<void> {
  if (tx.shouldFlush) tx.flush();
  await endOfSlice(clock);
}

function releaseObject(tx: CpTransaction, map: BlockMap): void {
  walkMap(tx, map, (ptr) => tx.release(ptr.block));
}

/** File blocks touched by `extents`, ascending. */
function touchedBlocks(extents: Extent[], nBlocks: number): number[] {
  const out: number[] = [];
  for (const e of extents) {
    const first = Math.floor(e.start / BLOCK_SIZE);
    const last = Math.min(nBlocks - 1, Math.floor((e.end - 1) / BLOCK_SIZE));
    for (let b = Math.max(first, out.length ? out[out.length - 1] + 1 : 0); b <= last; b++) {
      out.push(b);
    }
  }
  return out;
}

async function writeObject(
  tx: CpTransaction,
  log: PayloadReader,
  d: DirtyObject,
  base: ObjectRecord | null,
  counts: { zeroBlocks: number; clock: Clock },
): Promise<ObjectRecord> {
  const nBlocks = Math.ceil(d.size / BLOCK_SIZE);
  const baseMap = base?.map ?? EMPTY_MAP;
  const oldPtrs = new MapCursor(tx, baseMap);
  const changes = new Map<number, CheckedPtr>();
  const touched = touchedBlocks(d.extents, nBlocks);
  let e = 0; // first extent that may overlap the current block
  let cached = null as { extent: Extent; bytes: Uint8Array } | null;
  for (let i = 0; i < touched.length; i++) {
    const fb = touched[i];
    const blockStart = fb * BLOCK_SIZE;
    const blockEnd = blockStart + BLOCK_SIZE;
    while (e < d.extents.length && d.extents[e].end <= blockStart) e++;
    const slices: PlacedSlice[] = [];
    // Fast path, most blocks of big writes: one extent covers the whole block.
    const cover = d.extents[e];
    const covered = cover !== undefined && cover.start <= blockStart && cover.end >= blockEnd;
    if (covered) {
      slices.push({
        at: 0,
        length: BLOCK_SIZE,
        lsn: cover.lsn,
        position: cover.position,
        payloadOffset: cover.payloadStart + (blockStart - cover.start),
      });
    }
    for (let j = e; !covered && j < d.extents.length && d.extents[j].start < blockEnd; j++) {
      const x = d.extents[j];
      const from = Math.max(x.start, blockStart);
      const to = Math.min(x.end, blockEnd);
      slices.push({
        at: from - blockStart,
        length: to - from,
        lsn: x.lsn,
        position: x.position,
        payloadOffset: x.payloadStart + (from - x.start),
      });
    }
    const oldPtr = oldPtrs.lookup(fb);
    const whole = slices.length === 1 && slices[0].length === BLOCK_SIZE ? slices[0] : null;
    let content: Uint8Array;
    if (whole) {
      // Whole blocks come in runs from one extent: read the extent once, not a block at a time.
      const x = d.extents[e];
      if (cached?.extent !== x) {
        cached = { extent: x, bytes: log.readPayload(x.position, x.payloadStart, x.end - x.start) };
      }
      const at = whole.payloadOffset - x.payloadStart;
      content = cached.bytes.subarray(at, at + BLOCK_SIZE);
    } else {
      content = oldPtr.block !== 0 ? tx.readBlock(oldPtr.block) : new Uint8Array(BLOCK_SIZE);
      // A damaged block patched into a new one would get a fresh, valid check: refuse it.
      if (oldPtr.block !== 0) assertBlock(content, oldPtr, "data", d.key);
      for (const s of slices) {
        log.readPayload(
          s.position,
          s.payloadOffset,
          s.length,
          content.subarray(s.at, s.at + s.length),
        );
      }
    }
    // Bytes past the end of the object stay zero so equal objects have equal blocks.
    const tail = d.size - blockStart;
    if (tail < BLOCK_SIZE) {
      if (whole) content = content.slice();
      content.fill(0, tail);
    }
    if (oldPtr.block !== 0) tx.release(oldPtr.block);
    if (isZeroBlock(content)) {
      counts.zeroBlocks++;
      changes.set(fb, NO_BLOCK);
      continue;
    }
    const block = tx.allocate();
    const digest = (whole && tail >= BLOCK_SIZE ? knownDigest(d.extents[e], whole) : null) ??
      blake3(content);
    const row = tx.write(block, content, "data", oldPtr.block, digest);
    if (whole) tx.written.setLog(row, whole.lsn, whole.payloadOffset);
    else {
      tx.written.setPatch(
        row,
        slices.map(({ at, length, lsn, payloadOffset }) => ({ at, length, lsn, payloadOffset })),
      );
    }
    changes.set(fb, { block, birth: tx.cp, check: checkOf(digest) });
    if ((i & 63) === 63) await pause(tx, counts.clock);
  }
  // A replaced object's blocks that no write touched are holes.
  const map = updateMap(tx, baseMap, changes, nBlocks);
  return { size: d.size, mtime: d.mtime, etag: d.etag ?? UNKNOWN_ETAG, map, meta: d.meta };
}

/** The digest of a whole block taken from one log record, if it was computed at log time. */
function knownDigest(extent: Extent, slice: PlacedSlice): Uint8Array | null {
  if (!extent.blockDigests || slice.payloadOffset % BLOCK_SIZE !== 0) return null;
  const i = slice.payloadOffset / BLOCK_SIZE;
  if ((i + 1) * 32 > extent.blockDigests.length) return null;
  return extent.blockDigests.subarray(i * 32, (i + 1) * 32);
}

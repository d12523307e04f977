/**
 * Dedup on the forwarding path: a record whose payload (or some of its
 * aligned 4 KiB blocks, or its tail) the destination verifiably holds goes
 * as a reference frame (src/protocol/log-frame/ref-frame.ts) instead of its
 * bytes.
 *
 * Verifiably: only records the destination acknowledged (<= `ackedLsn`) and
 * did not drop with its committed CP, and blocks live in its committed CP
 * (`holdsBlock`), are named, never a block of the same batch (the ZFS
 * lesson, OpenZFS #10117). A payload's partial last block (a small object,
 * a file's tail) is found by the digest of its block as a CP stores it
 * (zero-padded): it goes as a LOG piece of that many bytes or a PREFIX of
 * the volume block. A block moved off the 4 KiB grid (an insertion or a
 * deletion before it) is found by its content-defined anchors
 * (./shift-index.ts) and named where it landed, as a BLOCK or LOG piece
 * among literal bytes. Each hint of the {@link BlockLocator} is compared
 * with the bytes here first; the destination checks the rebuilt payload
 * against the digest again. A frame the destination could not rebuild comes
 * back unacknowledged (it answers `need`): it is sent whole from then on.
 *
 * @module
 */
import { BLOCK_SIZE, concatBytes, equalBytes } from "../../bytes/mod.ts";
import {
  encodeRefFrame,
  HEADER_SIZE,
  Off,
  Op,
  type Piece,
  pieceLength,
} from "../../protocol/log-frame/mod.ts";
import { blake3 } from "../../hash/blake3.ts";
import { blockCheck } from "../../protocol/cp-sync/records.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Appended, NvLog } from "../../storage/log/mod.ts";
import type { Volume } from "../../storage/volume/volume.ts";
import { type BlockLocation, type BlockLocator, locationOf } from "./block-locator.ts";
import { ShiftIndex } from "./shift-index.ts";

/**
 * A batch is said to repeat itself (the link compresses it with a long
 * window) when at least 1/REPEATS_SHARE of its bytes repeat unacknowledged
 * blocks.
 */
const REPEATS_SHARE = 16;

/** Payloads and tails smaller than this go as bytes (a reference would save next to nothing). */
const MIN_PAYLOAD = 64;

/** A place of a payload the destination holds; `shifted`: found off the 4 KiB grid. */
interface Named {
  at: number;
  piece: Piece;
  shifted?: boolean;
}

/** What the deduper needs to know of the pair, read at each batch. */
export interface DedupView {
  /** Highest LSN the destination acknowledged. */
  ackedLsn(): number;
  /** Highest LSN the destination may have dropped (its committed CP covers it). */
  droppedLsn(): number;
  /** True when `block` is live in the destination's committed CP with the bytes it has here. */
  holdsBlock(block: number): boolean;
  /** The reference frame format the destination reads (`REF_FORMAT`; 1 has no PREFIX). */
  refFormat(): number;
}

/**
 * Turns batches of records into the bytes of a log request.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../../protocol/cp-sync/stats.ts";
 * import type { Appended, NvLog } from "../../storage/log/mod.ts";
 * import type { Volume } from "../../storage/volume/volume.ts";
 * import { BlockLocator } from "./block-locator.ts";
 * declare const log: NvLog;
 * declare const volume: Volume;
 * declare const records: Appended[];
 * declare function sendFrames(bytes: Uint8Array): Promise<number>;
 * const view = { ackedLsn: () => 10, droppedLsn: () => 0, holdsBlock: () => true, refFormat: () => 2 };
 * const deduper = new FrameDeduper(new BlockLocator(), log, volume, view, newWireStats());
 * const acked = await deduper.send(records, sendFrames);
 * ```
 */
export class FrameDeduper {
  #locator: BlockLocator;
  #log: NvLog;
  #volume: Volume;
  #view: DedupView;
  #wire: WireStats;
  /** Bytes of the batch being encoded that repeat records not yet acknowledged. */
  #repeated = 0;
  /** LSNs the destination could not rebuild: sent whole. */
  #whole = new Set<number>();
  /** A partial block zero-padded, as a CP writes it (hashed for the locator). */
  #padded = new Uint8Array(BLOCK_SIZE);
  /** Anchors of forwarded blocks: where shifted content may be held. */
  #shifts = new ShiftIndex();
  /** Pieces of the record being encoded that were found off the 4 KiB grid. */
  #shiftedPieces = 0;

  constructor(locator: BlockLocator, log: NvLog, volume: Volume, view: DedupView, wire: WireStats) {
    this.#locator = locator;
    this.#log = log;
    this.#volume = volume;
    this.#view = view;
    this.#wire = wire;
  }

  /**
   * Sends `records` (consecutive LSNs) through `send`, with references where
   * they are safe; resolves with what the destination acknowledged. A
   * reference frame left unacknowledged is marked to go whole next time.
   */
  async send(
    records: Appended[],
    send: (bytes: Uint8Array, repeats: boolean) => Promise<number>,
  ): Promise<number> {
    const first = records[0].lsn;
    for (const lsn of this.#whole) if (lsn < first) this.#whole.delete(lsn);
    const refs = new Set<number>();
    this.#repeated = 0;
    const parts = records.map((r) => {
      const ref = this.#encode(r);
      if (ref === null) return r.frame;
      refs.add(r.lsn);
      return ref;
    });
    const bytes = concatBytes(parts);
    const acked = await send(bytes, this.#repeated * REPEATS_SHARE >= bytes.length);
    if (refs.has(acked + 1)) this.#whole.add(acked + 1);
    return acked;
  }

  /** The reference frame of `r`, or null when it goes whole. */
  #encode(r: Appended): Uint8Array | null {
    const h = r.header;
    if (h.op !== Op.WRITE || h.payloadLength < MIN_PAYLOAD || this.#whole.has(r.lsn)) return null;
    const payload = r.frame.subarray(HEADER_SIZE + h.keyLength);
    this.#shiftedPieces = 0;
    const pieces = this.#wholePayload(r, payload) ?? this.#blocks(r, payload);
    if (pieces === null) return null;
    const ref = encodeRefFrame(r.frame, pieces);
    if (ref.length >= r.frame.length) return null;
    this.#wire.logShiftedBlocks += this.#shiftedPieces;
    this.#wire.logRefBlocks += pieces.filter((p) => p.kind !== "bytes").length;
    this.#wire.logRefBytes += r.frame.length - ref.length;
    return ref;
  }

  /** True when the destination still holds record `lsn` (acknowledged, not dropped). */
  #holds(lsn: number): boolean {
    return lsn <= this.#view.ackedLsn() && lsn > this.#view.droppedLsn();
  }

  /** One piece naming a record with the same payload, checked here. */
  #wholePayload(r: Appended, payload: Uint8Array): Piece[] | null {
    const digest = r.frame.subarray(Off.payloadDigest, Off.payloadDigest + 32);
    const lsn = this.#locator.findPayload(digest);
    const piece = lsn === null ? null : this.#logPiece({ lsn, payloadOffset: 0 }, payload);
    return piece && [piece];
  }

  /**
   * Literal bytes around the blocks (aligned or shifted) and the tail the
   * destination holds; null when none.
   */
  #blocks(r: Appended, payload: Uint8Array): Piece[] | null {
    // Named places, by payload offset: aligned blocks in order, then shifted ones, then the tail.
    const named: Named[] = [];
    const n = r.blockDigests.length / 32;
    const found = this.#locator.findBlocks(r.blockDigests);
    for (let i = 0; i < n; i++) {
      if (found[i] < 0) continue;
      const where = locationOf(found[i]);
      const at = i * BLOCK_SIZE;
      const block = payload.subarray(at, at + BLOCK_SIZE);
      const piece = this.#blockPiece(where, r.blockDigests.subarray(i * 32, i * 32 + 32), block);
      if (!piece && this.#repeatsUnacked(where, r.lsn, at)) this.#repeated += BLOCK_SIZE;
      if (piece) named.push({ at, piece });
    }
    const aligned = named.length;
    if (aligned < n) this.#shifted(r, payload, named);
    if (payload.length - n * BLOCK_SIZE >= MIN_PAYLOAD) {
      const piece = this.#tailPiece(r.lsn, n, payload.subarray(n * BLOCK_SIZE));
      if (piece) named.push({ at: n * BLOCK_SIZE, piece });
    }
    if (named.length === 0) return null;
    if (named.length > aligned) named.sort((a, b) => a.at - b.at);
    const pieces: Piece[] = [];
    let literalFrom = 0;
    for (const { at, piece, shifted } of named) {
      if (at < literalFrom) continue; // overlaps a place taken before: the earlier start wins
      if (shifted) this.#shiftedPieces++;
      if (literalFrom < at) {
        pieces.push({ kind: "bytes", bytes: payload.subarray(literalFrom, at) });
      }
      const last = pieces[pieces.length - 1];
      if (
        piece.kind === "log" && last?.kind === "log" && last.lsn === piece.lsn &&
        last.payloadOffset + last.length === piece.payloadOffset
      ) {
        last.length += piece.length; // a run of one record: one piece
      } else pieces.push(piece);
      literalFrom = at + pieceLength(piece);
    }
    if (literalFrom < payload.length) {
      pieces.push({ kind: "bytes", bytes: payload.subarray(literalFrom) });
    }
    return pieces;
  }

  /**
   * Adds to `named` the blocks held elsewhere that start off the 4 KiB grid
   * of `payload`, then indexes its blocks for later records (after the
   * search: a record must not name itself). A payload whose blocks were all
   * found aligned is neither searched nor indexed (its original was).
   */
  #shifted(r: Appended, payload: Uint8Array, named: Named[]): void {
    const anchors = this.#shifts.anchorsOf(payload);
    if (anchors === null) return;
    this.#shifts.search(payload, anchors, (at, digest) => {
      const where = this.#locator.find(digest);
      const piece = where && this.#blockPiece(where, digest, payload.subarray(at, at + BLOCK_SIZE));
      if (piece === null) return false; // another candidate for this start may hold
      named.push({ at, piece, shifted: true });
      return true;
    });
    this.#shifts.add(payload, r.blockDigests, anchors);
  }

  /**
   * True when the block at `payloadOffset` of record `lsn` has its content
   * at another place of the log not yet acknowledged (in flight, this batch,
   * this record: the locator keeps one of a record's repeats): no reference
   * may name it, but the link's compression can see it.
   */
  #repeatsUnacked(where: BlockLocation, lsn: number, payloadOffset: number): boolean {
    return where.kind === "log" && where.lsn > this.#view.ackedLsn() &&
      (where.lsn !== lsn || where.payloadOffset !== payloadOffset);
  }

  /** A piece for one block the destination holds at `where` (the locator's hint), checked against `bytes`, or null. */
  #blockPiece(where: BlockLocation, digest: Uint8Array, bytes: Uint8Array): Piece | null {
    if (where.kind === "volume") {
      const b = where.block;
      if (!this.#view.holdsBlock(b) || !equalBytes(this.#volume.readBlock(b), bytes)) return null;
      return { kind: "block", block: b, check: blockCheck(digest) };
    }
    return this.#logPiece(where, bytes);
  }

  /**
   * A piece for the partial last block `tail` (block `index` of record
   * `lsn`), found by the digest of the block a CP makes of it; the tail is
   * indexed for later records (named once the destination acknowledged it).
   */
  #tailPiece(lsn: number, index: number, tail: Uint8Array): Piece | null {
    const padded = this.#padded;
    padded.fill(0);
    padded.set(tail);
    const digest = blake3(padded);
    const where = this.#locator.find(digest);
    this.#locator.addTail(digest, lsn, index, this.#view.droppedLsn());
    if (where === null) return null;
    if (where.kind === "log") return this.#logPiece(where, tail);
    const b = where.block;
    if (this.#view.refFormat() < 2 || !this.#view.holdsBlock(b)) return null;
    // The whole block equal (the rest zeros): its check is the one the destination computes.
    if (!equalBytes(this.#volume.readBlock(b), padded)) return null;
    return { kind: "prefix", block: b, length: tail.length, check: blockCheck(digest) };
  }

  /** A LOG piece for `bytes` at `where`, when the destination holds that record and they match. */
  #logPiece(where: { lsn: number; payloadOffset: number }, bytes: Uint8Array): Piece | null {
    if (!this.#holds(where.lsn)) return null;
    const held = this.#log.readRecordPayload(where.lsn, where.payloadOffset, bytes.length);
    if (held === null || !equalBytes(held, bytes)) return null;
    return {
      kind: "log",
      lsn: where.lsn,
      payloadOffset: where.payloadOffset,
      length: bytes.length,
    };
  }
}

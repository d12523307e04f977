/**
 * References on the forwarding path (reference frames, docs/internals.md §6
 * "Dedup on the forwarding path"), watched on the source's link:
 *
 * - every reference a source sends is true on the source (its pieces rebuild
 *   the record it logged) and names only what the destination said it holds:
 *   a record up to what it acknowledged, a block while its committed CP is
 *   ours;
 * - every record the destination acknowledges is the source's, byte for byte
 *   (but for bits the fault model flipped in it there);
 * - the forger, a planted bug of the simulator only (never of `src/`): in a
 *   share of the trials it replaces a record of a batch by a reference the
 *   source's deduper would never send — to where this source sent the same
 *   bytes before, whether the destination acknowledged them, dropped them or
 *   is receiving them in this very batch (the ZFS lesson, OpenZFS #10117),
 *   or to other bytes (a piece shifted, a block renamed, a block whose check
 *   was computed from the destination's own bytes of it). The destination
 *   must ask for the bytes (`need`) or rebuild the source's record exactly;
 *   the byte check above tells.
 *
 * @module
 */
import { BLOCK_SIZE, concatBytes, equalBytes } from "../src/bytes/mod.ts";
import { resolveRefFrame } from "../src/edge-dest/ref-resolver.ts";
import type { CpPartAnswer } from "../src/edge-source/mirror/replica-client.ts";
import { blake3 } from "../src/hash/blake3.ts";
import type { WireStats } from "../src/protocol/cp-sync/stats.ts";
import type { DestState } from "../src/protocol/handshake/mod.ts";
import {
  decodeHeader,
  decodeRefFrame,
  encodeRefFrame,
  type FrameHeader,
  HEADER_SIZE,
  Off,
  Op,
  type Piece,
  REF_CHECK_BYTES,
  REF_MAGIC,
  type RefFrame,
} from "../src/protocol/log-frame/mod.ts";
import type { Prng } from "../src/runtime/random.ts";
import type { ObjectStore } from "../src/storage/objects/store.ts";
import { pickRecent } from "./content.ts";
import type { Machine } from "./pair.ts";
import { committedBlocks } from "./refs.ts";

/** What went as references on the forwarding path in one trial. */
export interface ForwardCounts {
  /** Reference frames the source's deduper sent, and their pieces naming records and blocks. */
  refFrames: number;
  logPieces: number;
  blockPieces: number;
  /** The sources' `wire.logRefBlocks` and `wire.logRefBytes` (pieces as references, bytes saved). */
  logRefBlocks: number;
  logRefBytes: number;
  /** The sources' `wire.logShiftedBlocks`: blocks named where an edit moved them. */
  logShiftedBlocks: number;
  /** The sources' `wire.logStreamBatches` (batches on the log stream), and of those the ones sent before the one before was answered (`wire.logBatchesOverlapped`). */
  logStreamBatches: number;
  logBatchesOverlapped: number;
  /** References the destination could not resolve (`log.ref_missed`): it asked for the bytes. */
  missed: number;
  /** References the forger planted; of those, the ones the destination acknowledged. */
  forged: number;
  forgedAcked: number;
}

/** The trial's side of the checks. */
export interface ForwardHost {
  readonly dest: Machine;
  fail(what: string): void;
  /** True while the destination's bytes of record `lsn` hold a bit the fault model flipped. */
  damagedRecord(lsn: number): boolean;
  /** True when the destination's block `block`, read as `bytes`, holds a bit the fault model flipped. */
  damagedBlock(block: number, bytes: Uint8Array): boolean;
}

/** What a reference named: the fault model's aim. */
export type Named = { kind: "log"; lsn: number } | { kind: "block"; block: number };

/** One log batch as the tap saw it on its way. */
export interface TappedBatch {
  /** The bytes sent (with the forger's reference, if it planted one). */
  bytes: Uint8Array;
  /** Each record of the batch, as the source logged it (whole frame bytes), by LSN. */
  truth: Map<number, Uint8Array>;
  /** The LSN the forger replaced by a reference, or null. */
  forged: number | null;
}

/** Places named lately, kept for the fault model. */
const NAMED = 16;
/** Block locations the forger remembers, at most (then it starts over). */
const FORGER_BLOCKS = 1 << 14;

/** The watch over the forwarding path of one trial. */
export class Forwarding {
  readonly #host: ForwardHost;
  /** The forger's generator, or null in a trial without forgeries. */
  readonly #forge: Prng | null;
  #wires: WireStats[] = [];
  #counts = { refFrames: 0, logPieces: 0, blockPieces: 0, missed: 0, forged: 0, forgedAcked: 0 };
  #named: Named[] = [];
  /**
   * Highest LSN the destination said it holds (answers, handshakes) since
   * its disk is new — and, until the new disk answers, its predecessor's:
   * the source cannot know of the replacement before.
   */
  ackedLsn = 0;
  #replaced = false;
  /** The destination's committed CP, as its latest answer said (-1: not heard yet). */
  destCp = -1;
  /** LSNs the forger replaced: each once, so the pair gets on. */
  readonly forgedLsns = new Set<number>();
  /** Where the sources sent each aligned block (hex digest -> LSN and payload offset). */
  readonly sentBlocks = new Map<string, { lsn: number; payloadOffset: number }>();

  constructor(host: ForwardHost, forge: Prng | null) {
    this.#host = host;
    this.#forge = forge;
  }

  /** A source's mirror starts, counting what it sends into `wire`: the tap of its client. */
  tap(source: Machine, wire: WireStats): LinkTap {
    this.#wires.push(wire);
    return new LinkTap(this, this.#host, source, this.#forge);
  }

  /** The destination got a new, empty disk: what it said before no longer holds once it answers. */
  destReplaced(): void {
    this.#replaced = true;
  }

  /** The destination answered: after a replacement, what its predecessor said is forgotten. */
  answer(): void {
    if (!this.#replaced) return;
    this.#replaced = false;
    this.ackedLsn = 0;
    this.destCp = -1;
  }

  /** A warning line of machine `name` (event `event`). */
  line(name: string, event: string): void {
    if (name === this.#host.dest.name && event === "log.ref_missed") this.#counts.missed++;
  }

  /** A reference frame of the deduper went out. */
  sentRef(ref: RefFrame): void {
    const c = this.#counts;
    c.refFrames++;
    for (const p of ref.pieces) {
      if (p.kind === "log") {
        c.logPieces++;
        this.#name({ kind: "log", lsn: p.lsn });
      } else if (p.kind === "block" || p.kind === "prefix") {
        c.blockPieces++;
        this.#name({ kind: "block", block: p.block });
      }
    }
  }

  /** The forger planted a reference; `acked`: the destination acknowledged it. */
  forged(acked: boolean): void {
    this.#counts.forged++;
    if (acked) this.#counts.forgedAcked++;
  }

  /** One of the places references named lately (the newest likeliest), or null. */
  named(r: Prng): Named | null {
    return pickRecent(this.#named, r);
  }

  #name(place: Named): void {
    this.#named.push(place);
    if (this.#named.length > NAMED) this.#named.shift();
  }

  get counts(): ForwardCounts {
    let logRefBlocks = 0;
    let logRefBytes = 0;
    let logShiftedBlocks = 0;
    let logStreamBatches = 0;
    let logBatchesOverlapped = 0;
    for (const w of this.#wires) {
      logRefBlocks += w.logRefBlocks;
      logRefBytes += w.logRefBytes;
      logShiftedBlocks += w.logShiftedBlocks;
      logStreamBatches += w.logStreamBatches;
      logBatchesOverlapped += w.logBatchesOverlapped;
    }
    return {
      ...this.#counts,
      logRefBlocks,
      logRefBytes,
      logShiftedBlocks,
      logStreamBatches,
      logBatchesOverlapped,
    };
  }
}

/** What one source's replication client sends and hears, checked. */
export class LinkTap {
  readonly #watch: Forwarding;
  readonly #host: ForwardHost;
  readonly #source: Machine;
  readonly #forge: Prng | null;

  constructor(watch: Forwarding, host: ForwardHost, source: Machine, forge: Prng | null) {
    this.#watch = watch;
    this.#host = host;
    this.#source = source;
    this.#forge = forge;
  }

  /** An answer saying what the destination holds (handshake, reset, catch-up). */
  heard(state: DestState): DestState {
    const w = this.#watch;
    w.answer();
    w.ackedLsn = Math.max(w.ackedLsn, state.lastLsn);
    w.destCp = state.cp;
    return state;
  }

  /** The destination's answer to a CP sync or catch-up part of CP `cp`: 200 committed it. */
  answered(cp: number, answer: CpPartAnswer): void {
    this.#watch.answer();
    if (answer.status === 200) this.#watch.destCp = cp;
  }

  /**
   * A batch the source is about to send: its references are checked against
   * the source, and the forger may replace one record.
   */
  sending(bytes: Uint8Array): TappedBatch {
    const truth = new Map<number, Uint8Array>();
    const store = this.#source.process?.handle.store;
    if (!store) return { bytes, truth, forged: null };
    const items = splitBatch(bytes);
    for (const item of items) {
      let frame: Uint8Array;
      if (item.ref === null) frame = bytes.slice(item.start, item.end);
      else {
        this.#watch.sentRef(item.ref);
        const rebuilt = this.#falseRef(store, item.ref);
        if (typeof rebuilt === "string") {
          this.#host.fail(
            `the source forwarded a false reference: LSN ${item.header.lsn}: ${rebuilt}`,
          );
          return { bytes, truth, forged: null };
        }
        frame = rebuilt;
      }
      truth.set(item.header.lsn, frame);
      this.#remember(item.header.lsn, frame);
    }
    const forged = this.#forgery(bytes, items, truth);
    if (forged === null) return { bytes, truth, forged: null };
    return { bytes: forged.bytes, truth, forged: forged.lsn };
  }

  /**
   * The whole frame a reference frame stands for on the source, or what is
   * wrong with it: a piece naming a record the destination never said it
   * holds, a block while its committed CP is not ours, or bytes that do not
   * rebuild the source's record.
   */
  #falseRef(store: ObjectStore, ref: RefFrame): Uint8Array | string {
    const w = this.#watch;
    for (const p of ref.pieces) {
      if (p.kind === "log" && p.lsn > w.ackedLsn) {
        return `it names LSN ${p.lsn}; the destination acknowledged LSNs up to ${w.ackedLsn}`;
      }
      if ((p.kind === "block" || p.kind === "prefix") && !this.#destHolds(store, p.block)) {
        return `it names block ${p.block} of CP ${store.superblock.cp}; the destination is at CP ${w.destCp}` +
          " and does not hold it with these bytes";
      }
    }
    const frame = resolveRefFrame(store, ref);
    if (typeof frame === "string") return frame;
    const lsn = ref.header.lsn;
    if (store.log.locate(lsn) !== null && !equalBytes(store.log.readFrames(lsn, 1), frame.bytes)) {
      return "it rebuilds other bytes than the source logged";
    }
    return frame.bytes;
  }

  /**
   * True when block `b` may be named: the destination's committed CP is the
   * source's, or (the window while the source's next CP is synced) the one
   * before, where the destination's own volume holds it live with the
   * source's bytes (or with bytes the fault model damaged). When the
   * destination is down, or committed the source's CP meanwhile (its answer
   * still on the way; the block may be one that CP released), that CP is
   * gone: the reference is left to its check there (a miss, never a wrong
   * frame: the acknowledged records and the images are checked anyway).
   */
  #destHolds(store: ObjectStore, b: number): boolean {
    const w = this.#watch;
    const cp = store.superblock.cp;
    if (w.destCp === cp) return true;
    if (w.destCp !== cp - 1) return false;
    const dest = this.#host.dest.process?.handle.store;
    if (!dest || dest.superblock.cp !== cp - 1) return true;
    if (!dest.volume.isLive(b)) return false;
    const held = dest.volume.readBlock(b);
    return equalBytes(held, store.volume.readBlock(b)) || this.#host.damagedBlock(b, held);
  }

  /** Notes where the aligned blocks of record `lsn` (whole frame `frame`) were sent. */
  #remember(lsn: number, frame: Uint8Array): void {
    if (this.#forge === null) return;
    const sent = this.#watch.sentBlocks;
    const payload = payloadOf(frame);
    for (let at = 0; at + BLOCK_SIZE <= payload.length; at += BLOCK_SIZE) {
      if (sent.size >= FORGER_BLOCKS) sent.clear();
      const key = blake3(payload.subarray(at, at + BLOCK_SIZE)).toHex();
      if (!sent.has(key)) sent.set(key, { lsn, payloadOffset: at });
    }
  }

  /** The batch with one record replaced by a forged reference (30% of batches), or null. */
  #forgery(
    bytes: Uint8Array,
    items: BatchItem[],
    truth: Map<number, Uint8Array>,
  ): { bytes: Uint8Array; lsn: number } | null {
    const r = this.#forge;
    if (r === null || !r.chance(0.3)) return null;
    const w = this.#watch;
    const candidates = items.filter((f) =>
      f.header.op === Op.WRITE && f.header.payloadLength >= BLOCK_SIZE &&
      !w.forgedLsns.has(f.header.lsn)
    );
    if (candidates.length === 0) return null;
    const victim = r.pick(candidates);
    const lsn = victim.header.lsn;
    const frame = truth.get(lsn)!;
    const pieces = r.chance(0.5) ? this.#uninventoried(lsn, frame) : null;
    const ref = encodeRefFrame(frame, pieces ?? this.#wrongBytes(r, frame));
    w.forgedLsns.add(lsn);
    const { start, end } = victim;
    return { bytes: concatBytes([bytes.subarray(0, start), ref, bytes.subarray(end)]), lsn };
  }

  /**
   * The true bytes of `frame`'s aligned blocks, named where this source sent
   * them before (its own record too), whatever the destination holds; null
   * when it sent none of them.
   */
  #uninventoried(lsn: number, frame: Uint8Array): Piece[] | null {
    const payload = payloadOf(frame);
    const pieces: Piece[] = [];
    let literalFrom = 0;
    for (let at = 0; at + BLOCK_SIZE <= payload.length; at += BLOCK_SIZE) {
      const key = blake3(payload.subarray(at, at + BLOCK_SIZE)).toHex();
      const where = this.#watch.sentBlocks.get(key);
      if (where === undefined || where.lsn > lsn) continue;
      if (literalFrom < at) {
        pieces.push({ kind: "bytes", bytes: payload.subarray(literalFrom, at) });
      }
      pieces.push({
        kind: "log",
        lsn: where.lsn,
        payloadOffset: where.payloadOffset,
        length: BLOCK_SIZE,
      });
      literalFrom = at + BLOCK_SIZE;
    }
    if (pieces.length === 0) return null;
    if (literalFrom < payload.length) {
      pieces.push({ kind: "bytes", bytes: payload.subarray(literalFrom) });
    }
    return pieces;
  }

  /**
   * `frame`'s first block named as other bytes: a piece of a record shifted
   * by a byte, a block of another number with the true bytes' check, or a
   * block live on the destination with a check of its own bytes there (a
   * check that holds: only the payload digest refuses it).
   */
  #wrongBytes(r: Prng, frame: Uint8Array): Piece[] {
    const payload = payloadOf(frame);
    const first = payload.subarray(0, BLOCK_SIZE);
    const rest: Piece[] = payload.length > BLOCK_SIZE
      ? [{ kind: "bytes", bytes: payload.subarray(BLOCK_SIZE) }]
      : [];
    const x = r.float();
    const dest = this.#host.dest.process?.handle.store;
    if (x < 0.4) {
      const where = this.#watch.sentBlocks.get(blake3(first).toHex());
      const lsn = where?.lsn ?? this.#watch.ackedLsn;
      const payloadOffset = (where?.payloadOffset ?? 0) + 1;
      return [{ kind: "log", lsn, payloadOffset, length: BLOCK_SIZE }, ...rest];
    }
    const live = x < 0.7 && dest ? committedBlocks(dest).filter((b) => b.data) : [];
    if (live.length > 0) {
      const { block } = r.pick(live);
      const check = blake3(dest!.volume.readBlock(block)).subarray(0, REF_CHECK_BYTES);
      return [{ kind: "block", block, check }, ...rest];
    }
    const check = blake3(first).subarray(0, REF_CHECK_BYTES);
    return [{ kind: "block", block: r.range(1, 64), check }, ...rest];
  }

  /** The destination acknowledged `lastLsn`: each record of the batch it holds is the source's. */
  acked(batch: TappedBatch, lastLsn: number): void {
    const w = this.#watch;
    w.answer();
    w.ackedLsn = Math.max(w.ackedLsn, lastLsn);
    if (batch.forged !== null) w.forged(lastLsn >= batch.forged);
    const dest = this.#host.dest.process?.handle.store;
    if (!dest) return;
    for (const [lsn, bytes] of batch.truth) {
      if (lsn > lastLsn || dest.log.locate(lsn) === null || this.#host.damagedRecord(lsn)) continue;
      if (!equalBytes(dest.log.readFrames(lsn, 1), bytes)) {
        this.#host.fail(
          `the destination acknowledged LSN ${lsn}, and its record is not the source's`,
        );
      }
    }
  }
}

/** A record of a batch: where it lies, its header, and its reference frame if it is one. */
interface BatchItem {
  header: FrameHeader;
  start: number;
  end: number;
  ref: RefFrame | null;
}

/**
 * The records of a batch, whole frames by their headers only: their payload
 * digests are the destination's to check (the bytes are the source's, as
 * the acknowledgement check compares).
 */
function splitBatch(bytes: Uint8Array): BatchItem[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const items: BatchItem[] = [];
  for (let start = 0; start < bytes.length;) {
    // Both kinds hold their length in the u32 after the magic.
    const end = start + view.getUint32(start + Off.frameLength, true);
    if (view.getUint32(start, true) === REF_MAGIC) {
      const ref = decodeRefFrame(bytes.subarray(start, end));
      items.push({ header: ref.header, start, end, ref });
    } else items.push({ header: decodeHeader(bytes.subarray(start, end)), start, end, ref: null });
    start = end;
  }
  return items;
}

/** The payload of whole frame `frame`. */
function payloadOf(frame: Uint8Array): Uint8Array {
  const keyLength = new DataView(frame.buffer, frame.byteOffset).getUint16(Off.keyLength, true);
  return frame.subarray(HEADER_SIZE + keyLength);
}

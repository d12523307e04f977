/**
 * The NVLOG: a durable, segmented, append-only log of frames.
 *
 * - The source appends records ({@link NvLog.write} / {@link NvLog.append}); the
 *   destination appends the frames it receives verbatim ({@link NvLog.writeFrames}
 *   / {@link NvLog.appendFrames}).
 * - Group commit: concurrent writers share one fdatasync ({@link GroupCommit}).
 * - Recovery ({@link NvLog.open}) verifies every frame; a torn tail of the last
 *   segment is cut off, any other damage is a {@link LogCorruptionError}.
 *
 * Invariants (asserted or kept by construction):
 * - LSNs are consecutive across segments; a segment is named by its first LSN;
 * - only the last segment may hold unsynced bytes: a segment is fdatasynced
 *   before the next one is created, so a crash can tear only the last segment;
 * - the active (last) segment is never dropped, so the next LSN survives a
 *   restart even when every record was dropped;
 * - no fd is closed while an fdatasync on it may be in flight.
 *
 * I/O is synchronous except fdatasync: writes land in the page cache (fast)
 * and the durable wait is the only slow part, which runs off the event loop.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fsyncDir } from "../durable.ts";
import {
  decodeFrame,
  encodeFrame,
  type Frame,
  FrameError,
  type FrameHeader,
  hashedBlockDigests,
  HEADER_SIZE,
  isVerifiedFrame,
  Op,
  parseFrames,
} from "../../protocol/log-frame/mod.ts";
import { asNoSpace, type FileSystem, nodeFileOps } from "../fs/file-ops.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import { LogCorruptionError, LogStateError } from "./errors.ts";
import { GroupCommit } from "./group-commit.ts";
import { DEFAULT_HELD_BLOCKS, HeldDigests } from "./held-digests.ts";
import { hashBlocks } from "../../hash/blake3.ts";
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { readHeaderAt, ScanBuffers, scanSegment } from "./scan.ts";
import { parseSegmentName, Segment, segmentName } from "./segment.ts";
import type {
  Appended,
  AppendRecord,
  DropReport,
  LogPosition,
  LogRecord,
  NvLogStats,
  RecoveryReport,
  TxnRef,
  WriteTicket,
} from "./types.ts";

/** Default rotation threshold: 64 MiB. */
export const DEFAULT_SEGMENT_SIZE = 64 << 20;
/** COMMIT payloads up to this size are returned inline by {@link NvLog.records}. */
const INLINE_MAX = 1024;
const RESET_NAME = /^([0-9a-f]{16})\.reset$/;

/** Options of {@link NvLog.open}. */
export interface NvLogOptions {
  /** Start a new segment once the active one would exceed this (bytes). Default 64 MiB. */
  segmentSize?: number;
  /**
   * Default true. False skips fdatasync/fsync (benchmarks of the rest of the
   * system only): `durable` then means "written", not "on disk".
   */
  sync?: boolean;
  /** Create the directory when missing. Default true. */
  create?: boolean;
  /** The file system of the log directory (tests inject faults here). Default node:fs. */
  fileOps?: FileSystem;
  /** The clock of a record's default mtime. Default the system clock. */
  clock?: Clock;
  /**
   * Most 4 KiB blocks of appended frames whose digests are kept for
   * {@link NvLog.readRecordBlocks} (36 bytes each). Default 2^18 (1 GiB of log).
   */
  heldBlocks?: number;
}

/** Frame bytes plus what the log records about each frame before writing it. */
interface Outgoing {
  header: FrameHeader;
  bytes: Uint8Array;
  blockDigests: Uint8Array;
}

/**
 * The refusal of a frame at `lsn` where the log takes `expected` next: a
 * repeat of a record it holds, or a gap.
 *
 * @example
 * ```ts
 * outOfOrder(7, 5).message; // "frame at LSN 7: expected LSN 5 (a gap of 2)"
 * ```
 */
export function outOfOrder(lsn: number, expected: number): FrameError {
  return new FrameError(
    `frame at LSN ${lsn}: expected LSN ${expected} (${
      lsn < expected ? "a repeat of a record the log holds" : `a gap of ${lsn - expected}`
    })`,
    lsn,
  );
}

/**
 * A durable write log in a directory of segment files.
 *
 * @example
 * ```ts
 * import { Flag, Op } from "../../protocol/log-frame/mod.ts";
 * declare const payload: Uint8Array;
 * declare function forward(frames: Uint8Array[]): Promise<void>;
 * declare const destLog: NvLog;
 * declare const receivedBytes: Uint8Array;
 * const log = await NvLog.open(await Deno.makeTempDir());
 * // Source: write, forward while the local fdatasync runs, then wait for both.
 * const ticket = log.write([{ fields: { op: Op.WRITE, flags: Flag.COMMIT_NOW | Flag.REPLACE, key: "a" }, payload }]);
 * const forwarded = forward(ticket.records.map((r) => r.frame));
 * await Promise.all([ticket.durable, forwarded]);
 * // Destination: append received frames verbatim.
 * await destLog.appendFrames(receivedBytes);
 * await log.close();
 * ```
 */
export class NvLog {
  /** The segment directory. */
  readonly dir: string;
  /** What recovery found and did when the log was opened. */
  readonly recovery: RecoveryReport;
  /** Rotation threshold in bytes. */
  readonly segmentSize: number;
  readonly #sync: boolean;
  readonly #ops: FileSystem;
  readonly #clock: Clock;
  /** Ascending by first LSN; the last is the active segment. Never empty while open. */
  #segments: Segment[];
  #byFirst = new Map<number, Segment>();
  #lastLsn: number;
  #durableLsn: number;
  /** Segments written since the last group-commit round started. */
  #dirty = new Set<Segment>();
  /** A segment file was created since the last round: its directory entry needs an fsync. */
  #dirDirty = false;
  #gc: GroupCommit;
  #buffers = new ScanBuffers();
  /** Digests verifying appended frames gave, so reading their blocks back does not hash. */
  readonly #held: HeldDigests;
  #failed: Error | undefined;
  #closed = false;
  /** truncateAfter()/reset() in progress: writes and drops are refused. */
  #exclusive = false;
  /**
   * The active segment holds records a CP covers: the next write starts a new
   * segment, so that a later {@link NvLog.dropThrough} can delete them all.
   */
  #rollNext = false;
  #stats = { records: 0, writes: 0, bytesWritten: 0, fdatasyncs: 0, rotations: 0 };

  private constructor(
    dir: string,
    segments: Segment[],
    recovery: RecoveryReport,
    opts: Required<NvLogOptions>,
  ) {
    if (segments.length === 0) throw new Error("invariant: an open log has a segment");
    this.dir = dir;
    this.recovery = recovery;
    this.segmentSize = opts.segmentSize;
    this.#sync = opts.sync;
    this.#ops = opts.fileOps;
    this.#clock = opts.clock;
    this.#held = new HeldDigests(opts.heldBlocks);
    this.#segments = segments;
    for (const s of segments) this.#byFirst.set(s.firstLsn, s);
    this.#lastLsn = segments[segments.length - 1].lastLsn;
    this.#durableLsn = this.#lastLsn;
    this.#gc = new GroupCommit(() => this.#syncRound());
  }

  /**
   * Opens (creating if needed) the log in `dir` and recovers it: every frame of
   * every segment is verified (header checksum, payload digest, LSN sequence).
   * The first invalid or truncated frame of the LAST segment is taken for a torn
   * write: the file is cut there (and synced) and the cut is reported in
   * {@link NvLog.recovery}. Any other defect throws {@link LogCorruptionError}
   * naming the segment file and offset.
   *
   * @example
   * ```ts
   * const dir = await Deno.makeTempDir();
   * const log = await NvLog.open(dir, { segmentSize: 64 << 20 });
   * if (log.recovery.dropped) console.warn("torn tail dropped", log.recovery.dropped);
   * console.log(log.lastLsn);
   * ```
   */
  static open(dir: string, options: NvLogOptions = {}): Promise<NvLog> {
    const opts: Required<NvLogOptions> = {
      segmentSize: options.segmentSize ?? DEFAULT_SEGMENT_SIZE,
      sync: options.sync ?? true,
      create: options.create ?? true,
      fileOps: options.fileOps ?? nodeFileOps,
      clock: options.clock ?? systemClock,
      heldBlocks: options.heldBlocks ?? DEFAULT_HELD_BLOCKS,
    };
    if (!Number.isSafeInteger(opts.segmentSize) || opts.segmentSize < 1) {
      throw new RangeError(`segmentSize must be a positive integer, got ${opts.segmentSize}`);
    }
    if (opts.create && !opts.fileOps.existsSync(dir)) {
      opts.fileOps.mkdirSync(dir, { recursive: true });
      // The directory's own entry must survive a crash, or so would not the log in it.
      if (opts.sync) fsyncDir(dirname(dir), opts.fileOps);
    }
    const segments: Segment[] = [];
    try {
      const recovery = recover(dir, segments, opts.sync, opts.fileOps);
      return Promise.resolve(new NvLog(dir, segments, recovery, opts));
    } catch (e) {
      for (const s of segments) s.close();
      return Promise.reject(e);
    }
  }

  /** Lowest LSN held (== lastLsn + 1 when the log holds no record). */
  get firstLsn(): number {
    return this.#segments[0].firstLsn;
  }

  /** Highest LSN written (0 for a new log). */
  get lastLsn(): number {
    return this.#lastLsn;
  }

  /** Highest LSN known durable (fdatasynced). */
  get durableLsn(): number {
    return this.#durableLsn;
  }

  /** Counters, including the fdatasync count that shows group commit at work. */
  get stats(): NvLogStats {
    return {
      firstLsn: this.firstLsn,
      lastLsn: this.#lastLsn,
      durableLsn: this.#durableLsn,
      segments: this.#segments.length,
      groupCommits: this.#gc.rounds,
      ...this.#stats,
    };
  }

  /**
   * Source side: assigns consecutive LSNs to `records`, encodes them and writes
   * them at the end of the active segment, all before returning. The frames are
   * then readable and may be forwarded at once; `ticket.durable` resolves when a
   * group-commit fdatasync covers them. Nothing is written if any record is
   * invalid (FrameError).
   *
   * The records of one call are consecutive, so a multi-record transaction can
   * be written in one call with `txn: "first"` on all but its first record; a
   * transaction spanning calls names its first LSN (`txn: appended[0].lsn`).
   *
   * @example
   * ```ts
   * import { Op } from "../../protocol/log-frame/mod.ts";
   * declare const log: NvLog;
   * declare const part1: Uint8Array, part2: Uint8Array;
   * declare function send(frames: Uint8Array[]): void;
   * const t = log.write([
   *   { fields: { op: Op.WRITE, key: "big", offset: 0 }, payload: part1 },
   *   { fields: { op: Op.WRITE, key: "big", offset: part1.length, txn: "first" }, payload: part2 },
   * ]);
   * send(t.records.map((r) => r.frame));
   * await t.durable;
   * ```
   */
  write(records: readonly AppendRecord[]): WriteTicket {
    this.#checkWritable();
    const first = this.#lastLsn + 1;
    const out: Outgoing[] = records.map((r, i) => {
      const lsn = first + i;
      const f = r.fields;
      return encodeFrame(
        {
          lsn,
          op: f.op,
          flags: f.flags ?? 0,
          key: f.key,
          txn: resolveTxn(f.txn, lsn, first),
          offset: f.offset ?? 0,
          mtime: f.mtime ?? this.#clock.now(),
        },
        r.payload ?? new Uint8Array(0),
      );
    });
    return this.#writeOut(out);
  }

  /**
   * {@link NvLog.write} and wait until durable.
   *
   * @example
   * ```ts
   * import { Op } from "../../protocol/log-frame/mod.ts";
   * declare const log: NvLog;
   * const [rec] = await log.append([{ fields: { op: Op.DELETE, key: "a" } }]);
   * ```
   */
  async append(records: readonly AppendRecord[]): Promise<Appended[]> {
    const t = this.write(records);
    await t.durable;
    return t.records;
  }

  /**
   * Destination side: validates every frame (checksums, digests, and LSNs
   * exactly lastLsn+1, +2, …) BEFORE writing anything, then writes the bytes
   * verbatim. `input` is either bytes holding whole frames, or frames from a
   * {@link FrameReader} (already verified: not hashed again).
   *
   * @throws FrameError on a defect, a gap ("expected LSN n") or a repeat; nothing is written then.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const body: Uint8Array;
   * const t = log.writeFrames(body);
   * await t.durable; // then acknowledge t.lastLsn
   * ```
   */
  writeFrames(input: Uint8Array | readonly Frame[]): WriteTicket {
    this.#checkWritable();
    const frames = input instanceof Uint8Array
      ? parseFrames(input, { copy: false })
      : input.map((f) => isVerifiedFrame(f) ? f : decodeFrame(f.bytes));
    let expected = this.#lastLsn + 1;
    for (const f of frames) {
      const lsn = f.header.lsn;
      if (lsn !== expected) throw outOfOrder(lsn, expected);
      expected++;
    }
    const ticket = this.#writeOut(frames, input instanceof Uint8Array ? input : undefined);
    for (const f of frames) {
      const digests = hashedBlockDigests(f);
      if (digests) this.#held.keep(f.header.lsn, f.payload, digests);
    }
    return ticket;
  }

  /**
   * {@link NvLog.writeFrames} and wait until durable.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const body: Uint8Array;
   * const { lastLsn } = await log.appendFrames(body);
   * ```
   */
  async appendFrames(
    input: Uint8Array | readonly Frame[],
  ): Promise<{ lastLsn: number; records: Appended[] }> {
    const t = this.writeFrames(input);
    await t.durable;
    return { lastLsn: t.lastLsn, records: t.records };
  }

  /** Resolves when everything written so far is durable. @throws the sync failure, if any. */
  async flush(): Promise<void> {
    await this.#gc.idle();
    if (this.#failed) throw this.#failed;
    if (this.#durableLsn !== this.#lastLsn) throw new Error("invariant: idle log is durable");
  }

  /**
   * Reads `length` payload bytes starting `at` bytes into the payload at
   * `position` (synchronous pread). With `into`, reads into its start and returns
   * that view.
   *
   * @throws LogStateError when the segment was dropped; RangeError outside the segment.
   *
   * @example
   * ```ts
   * import type { LogRecord } from "./types.ts";
   * declare const log: NvLog;
   * declare const rec: LogRecord;
   * const block = log.readPayload(rec.position, 4096, 4096);
   * ```
   */
  readPayload(position: LogPosition, at: number, length: number, into?: Uint8Array): Uint8Array {
    this.#checkOpen();
    const seg = this.#byFirst.get(position.segment);
    if (!seg) {
      throw new LogStateError(
        `segment ${segmentName(position.segment)} is not in the log (dropped?)`,
      );
    }
    const start = position.payloadOffset + at;
    if (
      !Number.isSafeInteger(start) || !Number.isSafeInteger(length) || at < 0 || length < 0 ||
      position.payloadOffset < HEADER_SIZE || start + length > seg.size
    ) {
      throw new RangeError(
        `payload read [${start}, +${length}) outside segment ${seg.name} (${seg.size} bytes)`,
      );
    }
    if (into && into.length < length) {
      throw new RangeError(`buffer of ${into.length} bytes for a ${length}-byte read`);
    }
    const buf = into ? into.subarray(0, length) : new Uint8Array(length);
    const got = seg.read(buf, length, start);
    if (got !== length) throw new Error(`invariant: ${seg.name} holds ${start + length} bytes`);
    return buf;
  }

  /**
   * The raw frames from `fromLsn` on, concatenated, at most `maxBytes` long —
   * but always at least one frame when `fromLsn ≤ lastLsn`, so the caller makes
   * progress. Empty when `fromLsn > lastLsn`. Frames written but not yet durable
   * are included.
   *
   * @throws LogStateError when `fromLsn` was dropped.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const destLastLsn: number;
   * declare function resend(frames: Uint8Array): Promise<number>;
   * let lsn = destLastLsn + 1;
   * for (let b = log.readFrames(lsn, 4 << 20); b.length > 0; b = log.readFrames(lsn, 4 << 20)) {
   *   lsn += await resend(b);
   * }
   * ```
   */
  readFrames(fromLsn: number, maxBytes: number): Uint8Array {
    this.#checkOpen();
    if (fromLsn > this.#lastLsn) return new Uint8Array(0);
    this.#checkHeld(fromLsn);
    const ranges: Array<{ seg: Segment; start: number; end: number }> = [];
    let total = 0;
    let si = this.#segmentIndex(fromLsn);
    for (let lsn = fromLsn; lsn <= this.#lastLsn; lsn++) {
      while (lsn > this.#segments[si].lastLsn) si++;
      const seg = this.#segments[si];
      const start = seg.frameOffset(lsn);
      const length = seg.frameLength(lsn);
      if (total > 0 && total + length > maxBytes) break;
      const last = ranges[ranges.length - 1];
      if (last && last.seg === seg) last.end = start + length;
      else ranges.push({ seg, start, end: start + length });
      total += length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const r of ranges) {
      const got = r.seg.read(out.subarray(at), r.end - r.start, r.start);
      if (got !== r.end - r.start) throw new Error(`invariant: ${r.seg.name} holds ${r.end} bytes`);
      at += got;
    }
    return out;
  }

  /**
   * Bytes of the frames with LSN > `lsn` that the log holds (all of it when
   * `lsn` is below its first record): what a destination that acknowledged
   * `lsn` still lacks.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const ackedLsn: number;
   * const lag = log.bytesAfter(ackedLsn);
   * ```
   */
  bytesAfter(lsn: number): number {
    this.#checkOpen();
    if (lsn >= this.#lastLsn) return 0;
    const from = Math.max(lsn + 1, this.firstLsn);
    let si = this.#segmentIndex(from);
    let total = this.#segments[si].size - this.#segments[si].frameOffset(from);
    for (si++; si < this.#segments.length; si++) total += this.#segments[si].size;
    return total;
  }

  /**
   * Headers and positions of the records with LSN ≥ `fromLsn`, in LSN order
   * (for replay; feed to {@link groupTransactions}). Headers are re-read from
   * disk and their checksums re-verified; COMMIT payloads come `inline`.
   * Records appended during the iteration are included; do not drop or truncate
   * during it.
   *
   * @throws LogStateError when `fromLsn` was dropped.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const cp: { lsn: number };
   * for (const r of log.records(cp.lsn + 1)) console.log(r.header.lsn, r.header.key);
   * ```
   */
  *records(fromLsn: number = this.firstLsn): Generator<LogRecord> {
    this.#checkOpen();
    if (fromLsn > this.#lastLsn) return;
    this.#checkHeld(fromLsn);
    let si = this.#segmentIndex(fromLsn);
    for (let lsn = fromLsn; lsn <= this.#lastLsn; lsn++) {
      this.#checkOpen();
      while (lsn > this.#segments[si].lastLsn) si++;
      const seg = this.#segments[si];
      const offset = seg.frameOffset(lsn);
      const header = readHeaderAt(seg, offset, seg.size, this.#buffers);
      if (header.lsn !== lsn) {
        throw new LogCorruptionError(seg.name, offset, `expected LSN ${lsn}, read ${header.lsn}`);
      }
      const position = {
        segment: seg.firstLsn,
        payloadOffset: offset + HEADER_SIZE + header.keyLength,
      };
      let inline: Uint8Array | undefined;
      if (header.op === Op.COMMIT && header.payloadLength <= INLINE_MAX) {
        inline = this.readPayload(position, 0, header.payloadLength);
      }
      yield inline ? { header, position, inline } : { header, position };
    }
  }

  /**
   * Where the payload of record `lsn` lies, or null when the log does not hold
   * it (never written, or dropped). The destination resolves LOG_REF and PATCH
   * references with it.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * const rec = log.locate(42);
   * if (rec) log.readPayload(rec.position, 0, rec.payloadLength);
   * ```
   */
  locate(lsn: number): { position: LogPosition; payloadLength: number } | null {
    this.#checkOpen();
    if (lsn < this.firstLsn || lsn > this.#lastLsn) return null;
    const seg = this.#segments[this.#segmentIndex(lsn)];
    const offset = seg.frameOffset(lsn);
    const header = readHeaderAt(seg, offset, seg.size, this.#buffers);
    if (header.lsn !== lsn) return null;
    return {
      position: { segment: seg.firstLsn, payloadOffset: offset + HEADER_SIZE + header.keyLength },
      payloadLength: header.payloadLength,
    };
  }

  /**
   * Bytes `[at, at + length)` of record `lsn`'s payload, or null when the log
   * does not hold that record or its payload is shorter: how a reference to a
   * forwarded record is resolved (the destination's LOG_REF and PATCH, the
   * source's check of a block locator hint).
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * const block = log.readRecordPayload(42, 8192, 4096); // the third block of record 42
   * ```
   */
  readRecordPayload(lsn: number, at: number, length: number): Uint8Array | null {
    const rec = this.locate(lsn);
    if (rec === null || at + length > rec.payloadLength) return null;
    return this.readPayload(rec.position, at, length);
  }

  /**
   * `count` whole blocks of record `lsn`'s payload from `at`, with their
   * standalone BLAKE3 digests, or null when the log does not hold them. The
   * digests are of the bytes read: those verifying the frame gave when the
   * bytes read back are the bytes it verified (checked by CRC-32, see
   * ./held-digests.ts), else hashed now.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * const run = log.readRecordBlocks(42, 8192, 2); // blocks 2 and 3 of record 42
   * if (run) console.log(run.bytes.length, run.digests.length); // 8192 64
   * ```
   */
  readRecordBlocks(
    lsn: number,
    at: number,
    count: number,
  ): { bytes: Uint8Array; digests: Uint8Array } | null {
    const bytes = this.readRecordPayload(lsn, at, count * BLOCK_SIZE);
    if (bytes === null) return null;
    return { bytes, digests: this.#held.match(lsn, at, bytes) ?? hashBlocks(bytes) };
  }

  /**
   * Deletes the segments whose every record has LSN ≤ `lsn` (covered by a CP
   * committed on both sides) and is durable. When the active segment holds
   * such records it is rolled: replaced at once by a new empty segment when
   * all of its records are covered, else the next write starts a new segment
   * and the next drop takes the old one. So the log shrinks after every CP,
   * not only once a segment is full (a small disk may never fill one).
   * Positions into deleted segments become invalid.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const cp: { lsn: number };
   * const { segments } = log.dropThrough(cp.lsn);
   * ```
   */
  dropThrough(lsn: number): DropReport {
    this.#checkOpen();
    if (this.#exclusive) throw new LogStateError("NVLOG: truncate or reset in progress");
    // A segment ending at or below durableLsn has no fdatasync in flight: rounds
    // only sync segments holding records above durableLsn.
    const limit = Math.min(lsn, this.#durableLsn);
    const removed: string[] = [];
    const active = this.#segments[this.#segments.length - 1];
    if (active.offsets.length > 0 && active.firstLsn <= limit) {
      this.#rollNext = true;
      if (active.lastLsn <= limit) {
        try {
          this.#roll();
          // The successor's name carries the next LSN: durable before its predecessor goes.
          if (this.#sync) fsyncDir(this.dir, this.#ops);
        } catch {
          // No new segment now (e.g. no inode left): the next write rolls, the next drop deletes.
        }
      }
    }
    while (this.#segments.length > 1 && this.#segments[0].lastLsn <= limit) {
      const seg = this.#segments.shift()!;
      if (this.#dirty.has(seg)) throw new Error("invariant: a dropped segment is synced");
      this.#byFirst.delete(seg.firstLsn);
      seg.close();
      this.#ops.unlinkSync(seg.path);
      removed.push(seg.name);
    }
    if (removed.length > 0 && this.#sync) fsyncDir(this.dir, this.#ops);
    this.#held.dropBelow(this.firstLsn);
    return { segments: removed, firstLsn: this.firstLsn };
  }

  /**
   * Copies the frames with LSN > `lsn` durably into a new file
   * `dir/<lsn + 1 as 16 hex>.seg` — the bytes as in the log, so
   * `NvLog.open(dir)` reads them — and resolves with its path. A source sets
   * an unacknowledged tail aside this way before {@link NvLog.truncateAfter}.
   * Copies through a 1 MiB buffer: memory does not grow with the tail.
   *
   * @throws LogStateError when there is no record after `lsn`, or it was dropped.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const ackedLsn: number;
   * const file = await log.copyFramesAfter(ackedLsn, "data/source/quarantine");
   * await log.truncateAfter(ackedLsn);
   * ```
   */
  async copyFramesAfter(lsn: number, dir: string): Promise<string> {
    this.#checkOpen();
    if (lsn >= this.#lastLsn) throw new LogStateError(`NVLOG: no record after LSN ${lsn}`);
    this.#checkHeld(lsn + 1);
    if (!this.#ops.existsSync(dir)) {
      this.#ops.mkdirSync(dir, { recursive: true });
      if (this.#sync) fsyncDir(dirname(dir), this.#ops);
    }
    // A quarantine file is a segment of its own: NvLog.open(dir) reads it back.
    this.#ops.closeSync(this.#ops.openSync(join(dir, segmentName(lsn + 1)), "w"));
    const copy = Segment.openExisting(dir, lsn + 1, this.#ops);
    const path = copy.path;
    try {
      const buf = new Uint8Array(1 << 20);
      let out = 0;
      const first = this.#segmentIndex(lsn + 1);
      for (let si = first; si < this.#segments.length; si++) {
        const seg = this.#segments[si];
        for (let at = si === first ? seg.frameOffset(lsn + 1) : 0; at < seg.size;) {
          const got = seg.read(buf, Math.min(buf.length, seg.size - at), at);
          if (got === 0) throw new Error(`invariant: ${seg.name} holds ${seg.size} bytes`);
          copy.write(buf.subarray(0, got), out);
          out += got;
          at += got;
        }
      }
      if (this.#sync) await this.#ops.fdatasync(copy.fd);
    } finally {
      copy.close();
    }
    if (this.#sync) fsyncDir(dir, this.#ops);
    return path;
  }

  /**
   * Removes every record with LSN > `lsn` (durably). For the destination when
   * its log is ahead of a restarted source (records it received but the source
   * lost before its own fdatasync: never acknowledged, so safe to drop).
   * Waits for pending syncs first; writes are refused meanwhile.
   *
   * @throws LogStateError when `lsn` < firstLsn - 1 (those records are gone).
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const sourceLastLsn: number;
   * if (log.lastLsn > sourceLastLsn) await log.truncateAfter(sourceLastLsn);
   * ```
   */
  async truncateAfter(lsn: number): Promise<void> {
    this.#checkWritable();
    if (!Number.isSafeInteger(lsn) || lsn < this.firstLsn - 1) {
      throw new LogStateError(
        `NVLOG: cannot truncate after LSN ${lsn}: the log starts at LSN ${this.firstLsn}`,
      );
    }
    this.#exclusive = true;
    try {
      await this.#gc.idle();
      if (this.#failed) throw this.#failed;
      if (lsn >= this.#lastLsn) return;
      this.#held.dropAbove(lsn);
      // Later segments go first (and durably), so a crash leaves a valid prefix.
      let removed = false;
      while (
        this.#segments.length > 1 && this.#segments[this.#segments.length - 1].firstLsn > lsn + 1
      ) {
        const seg = this.#segments.pop()!;
        this.#byFirst.delete(seg.firstLsn);
        seg.close();
        this.#ops.unlinkSync(seg.path);
        removed = true;
      }
      if (removed && this.#sync) fsyncDir(this.dir, this.#ops);
      const active = this.#segments[this.#segments.length - 1];
      active.truncateFrom(lsn + 1);
      if (this.#sync) this.#fsyncSync(active);
      this.#lastLsn = lsn;
      this.#durableLsn = lsn;
      if (active.lastLsn !== lsn) throw new Error("invariant: truncated to lsn");
    } finally {
      this.#exclusive = false;
    }
  }

  /**
   * Discards every record and continues at `lastLsn + 1` (the destination after
   * a full resync whose CP covers `lastLsn`). Crash-safe: an intent file
   * `<first>.reset` is made durable first and a later {@link NvLog.open}
   * completes an interrupted reset.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * declare const cp: { lsn: number };
   * await log.reset(cp.lsn); // log.lastLsn === cp.lsn, log holds no record
   * ```
   */
  async reset(lastLsn: number): Promise<void> {
    this.#checkWritable();
    if (!Number.isSafeInteger(lastLsn) || lastLsn < 0) {
      throw new RangeError(`reset LSN must be an integer ≥ 0, got ${lastLsn}`);
    }
    this.#exclusive = true;
    try {
      await this.#gc.idle();
      if (this.#failed) throw this.#failed;
      const first = lastLsn + 1;
      this.#held.clear();
      const intent = join(this.dir, resetName(first));
      this.#ops.closeSync(this.#ops.openSync(intent, "w"));
      if (this.#sync) fsyncDir(this.dir, this.#ops);
      for (const seg of this.#segments) {
        seg.close();
        this.#ops.unlinkSync(seg.path);
      }
      this.#segments = [];
      this.#byFirst.clear();
      if (this.#sync) fsyncDir(this.dir, this.#ops);
      this.#ops.renameSync(intent, join(this.dir, segmentName(first)));
      if (this.#sync) fsyncDir(this.dir, this.#ops);
      const seg = Segment.openExisting(this.dir, first, this.#ops);
      this.#segments = [seg];
      this.#byFirst.set(first, seg);
      this.#lastLsn = lastLsn;
      this.#durableLsn = lastLsn;
    } catch (e) {
      // The in-memory view no longer matches the files: refuse everything.
      this.#failed ??= new LogStateError("NVLOG: reset failed; reopen the log", { cause: e });
      throw e;
    } finally {
      this.#exclusive = false;
    }
  }

  /**
   * Waits for pending syncs, then closes every segment file. Idempotent.
   *
   * @example
   * ```ts
   * declare const log: NvLog;
   * await log.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#gc.idle();
    } finally {
      for (const s of this.#segments) s.close();
    }
  }

  // ---- internals ----

  #checkOpen(): void {
    if (this.#closed) throw new LogStateError("NVLOG is closed");
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failed) {
      throw new LogStateError(`NVLOG failed earlier, refusing writes: ${this.#failed.message}`, {
        cause: this.#failed,
      });
    }
    if (this.#exclusive) throw new LogStateError("NVLOG: truncate or reset in progress");
  }

  #checkHeld(lsn: number): void {
    if (!Number.isSafeInteger(lsn) || lsn < this.firstLsn) {
      throw new LogStateError(`LSN ${lsn} is not in the log (it starts at LSN ${this.firstLsn})`);
    }
  }

  /** Index of the segment holding `lsn` (which must be held). */
  #segmentIndex(lsn: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#segments[mid].firstLsn <= lsn) lo = mid;
      else hi = mid - 1;
    }
    if (!this.#segments[lo].has(lsn)) throw new Error(`invariant: LSN ${lsn} is held`);
    return lo;
  }

  /** Writes frames whose LSNs are exactly lastLsn+1.. at the end of the active segment. */
  #writeOut(frames: readonly Outgoing[], contiguous?: Uint8Array): WriteTicket {
    if (frames.length === 0) {
      return { records: [], lastLsn: this.#lastLsn, durable: this.#gc.request() };
    }
    let total = 0;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i].header.lsn !== this.#lastLsn + 1 + i) {
        throw new Error("invariant: consecutive LSNs");
      }
      total += frames[i].bytes.length;
    }
    if (contiguous && contiguous.length !== total) {
      throw new Error("invariant: bytes are the frames");
    }
    const seg = this.#activeFor(total);
    const start = seg.size;
    try {
      if (contiguous) {
        seg.write(contiguous, start);
      } else {
        let at = start;
        for (const f of frames) {
          seg.write(f.bytes, at);
          at += f.bytes.length;
        }
      }
    } catch (e) {
      // Undo a partial write (a full disk takes part of a frame) so the file
      // ends at a frame boundary again and the next append goes where this one
      // began: nothing of it is counted, read, forwarded or recovered.
      try {
        seg.cut(start);
      } catch (e2) {
        this.#failed = new LogStateError("NVLOG: could not undo a failed write", { cause: e2 });
      }
      throw asNoSpace(e, `log segment ${seg.name}`);
    }
    const records: Appended[] = [];
    let at = start;
    for (const f of frames) {
      seg.offsets.push(at);
      records.push({
        lsn: f.header.lsn,
        header: f.header,
        position: { segment: seg.firstLsn, payloadOffset: at + HEADER_SIZE + f.header.keyLength },
        frame: f.bytes,
        // Read through: a received frame hashes its blocks only if someone asks.
        get blockDigests() {
          return f.blockDigests;
        },
      });
      at += f.bytes.length;
    }
    seg.size = at;
    this.#lastLsn += frames.length;
    if (seg.lastLsn !== this.#lastLsn) {
      throw new Error("invariant: the active segment ends the log");
    }
    this.#dirty.add(seg);
    this.#stats.records += frames.length;
    this.#stats.writes++;
    this.#stats.bytesWritten += total;
    return { records, lastLsn: this.#lastLsn, durable: this.#gc.request() };
  }

  /**
   * The segment to write `bytes` into, rotating when the active one would
   * exceed segmentSize or a drop asked for a roll.
   */
  #activeFor(bytes: number): Segment {
    const active = this.#segments[this.#segments.length - 1];
    if (active.size === 0) return active;
    if (!this.#rollNext && active.size + bytes <= this.segmentSize) return active;
    return this.#roll();
  }

  /** Starts a new, empty active segment at lastLsn + 1. */
  #roll(): Segment {
    const active = this.#segments[this.#segments.length - 1];
    // The outgoing segment is made durable BEFORE its successor exists, so only
    // the last segment can ever hold a torn tail (recovery relies on it).
    if (this.#dirty.has(active)) {
      if (this.#sync) {
        try {
          this.#ops.fdatasyncSync(active.fd);
        } catch (e) {
          this.#failed = new LogStateError(
            "NVLOG: fdatasync failed; the log refuses further writes",
            { cause: e },
          );
          throw this.#failed;
        }
        this.#stats.fdatasyncs++;
      }
      this.#dirty.delete(active);
    }
    let next: Segment;
    try {
      next = Segment.create(this.dir, this.#lastLsn + 1, this.#ops);
    } catch (e) {
      throw asNoSpace(e, `a new log segment in ${this.dir}`);
    }
    this.#segments.push(next);
    this.#byFirst.set(next.firstLsn, next);
    this.#dirDirty = true;
    this.#rollNext = false;
    this.#stats.rotations++;
    return next;
  }

  /** One group-commit round: makes durable everything written before it started. */
  async #syncRound(): Promise<void> {
    if (this.#failed) throw this.#failed;
    const target = this.#lastLsn;
    const segments = [...this.#dirty];
    this.#dirty.clear();
    const dir = this.#dirDirty;
    this.#dirDirty = false;
    try {
      if (this.#sync) {
        for (const seg of segments) {
          await this.#ops.fdatasync(seg.fd);
          this.#stats.fdatasyncs++;
        }
        if (dir) fsyncDir(this.dir, this.#ops);
      }
    } catch (e) {
      // After a failed fdatasync the kernel may have dropped the dirty pages:
      // nothing written since the last good sync can be trusted. Stop here.
      this.#failed = new LogStateError("NVLOG: fdatasync failed; the log refuses further writes", {
        cause: e,
      });
      throw this.#failed;
    }
    if (target > this.#durableLsn) this.#durableLsn = target;
  }

  #fsyncSync(seg: Segment): void {
    this.#ops.fsyncSync(seg.fd);
    this.#stats.fdatasyncs++;
  }
}

function resetName(firstLsn: number): string {
  return segmentName(firstLsn).replace(/\.seg$/, ".reset");
}

/** Resolves a {@link TxnRef} for the record at `lsn`, the call's first record being `first`. */
function resolveTxn(ref: TxnRef | undefined, lsn: number, first: number): number {
  if (ref === undefined || ref === "self") return lsn;
  if (ref === "first") return first;
  if (!Number.isSafeInteger(ref) || ref < 1 || ref > lsn) {
    throw new FrameError(`frame at LSN ${lsn}: txn ${ref} is not an LSN at or before ${lsn}`, lsn);
  }
  return ref;
}

/**
 * Recovery: finishes an interrupted reset, opens and scans every segment in
 * order (filling `segments`), cuts a torn tail off the last one.
 */
function recover(
  dir: string,
  segments: Segment[],
  sync: boolean,
  ops: FileSystem,
): RecoveryReport {
  const names = ops.readdirSync(dir);
  const report: RecoveryReport = { segments: 0, records: 0, firstLsn: 1, lastLsn: 0 };

  const resets = names.map((n) => RESET_NAME.exec(n)).filter((m) => m !== null);
  if (resets.length > 1) {
    throw new LogCorruptionError(resets[1]![0], 0, "more than one reset intent file");
  }
  if (resets.length === 1) {
    const first = parseInt(resets[0]![1], 16);
    for (const n of names) if (parseSegmentName(n) !== undefined) ops.unlinkSync(join(dir, n));
    if (sync) fsyncDir(dir, ops);
    ops.renameSync(join(dir, resets[0]![0]), join(dir, segmentName(first)));
    if (sync) fsyncDir(dir, ops);
    report.completedReset = first - 1;
  }

  const firsts = ops.readdirSync(dir)
    .map((n) => parseSegmentName(n))
    .filter((v): v is number => v !== undefined)
    .sort((a, b) => a - b);
  if (firsts.length === 0) {
    segments.push(Segment.create(dir, 1, ops));
    if (sync) fsyncDir(dir, ops);
  }
  const buffers = new ScanBuffers();
  for (let i = 0; i < firsts.length; i++) {
    const seg = Segment.openExisting(dir, firsts[i], ops);
    segments.push(seg);
    const prev = segments[i - 1];
    if (prev && seg.firstLsn !== prev.lastLsn + 1) {
      throw new LogCorruptionError(
        seg.name,
        0,
        `first LSN ${seg.firstLsn} does not follow ${prev.name} (last LSN ${prev.lastLsn})`,
      );
    }
    const fileSize = ops.sizeSync(seg.fd);
    const scan = scanSegment(seg, fileSize, buffers);
    report.records += scan.records;
    const isLast = i === firsts.length - 1;
    if (scan.defect) {
      if (!isLast || !scan.defect.torn) {
        throw new LogCorruptionError(
          seg.name,
          scan.defect.offset,
          `${scan.defect.message}${isLast ? "" : " (before the last segment: not a torn tail)"}`,
        );
      }
      // A torn write: whatever follows was never durable, hence never acknowledged.
      seg.cut(scan.end);
      report.dropped = {
        segment: seg.name,
        offset: scan.end,
        bytes: fileSize - scan.end,
        reason: scan.defect.message,
      };
    }
    seg.size = scan.end;
  }
  const last = segments[segments.length - 1];
  // The tail may have come from the page cache of a crashed process, not from
  // disk: make it durable before anyone relies on it.
  if (sync) ops.fsyncSync(last.fd);
  report.segments = segments.length;
  report.firstLsn = segments[0].firstLsn;
  report.lastLsn = last.lastLsn;
  return report;
}

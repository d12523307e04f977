/**
 * Public types of the NVLOG.
 *
 * @module
 */
import type { FrameFields, FrameHeader, Op } from "../../protocol/log-frame/mod.ts";

/** Where a record's payload lies: stable until its segment is dropped. */
export interface LogPosition {
  /** The segment, named by its first LSN. */
  segment: number;
  /** File offset of the payload's first byte in that segment. */
  payloadOffset: number;
}

/** A record as written (by {@link NvLog.write} or {@link NvLog.writeFrames}). */
export interface Appended {
  /** The LSN assigned (source) or received (destination). */
  lsn: number;
  /** The frame's header. */
  header: FrameHeader;
  /** Where its payload lies, for {@link NvLog.readPayload}. */
  position: LogPosition;
  /** The frame's bytes, for forwarding to the destination as they are. */
  frame: Uint8Array;
  /** Standalone BLAKE3 digests (32 B each) of the payload's full 4 KiB blocks at 4 KiB-aligned payload positions. */
  blockDigests: Uint8Array;
}

/**
 * Which transaction a record belongs to, when appending:
 * - `"self"` (default): it starts its own (COMMIT_NOW writes, DELETE, the first WRITE of a transaction);
 * - `"first"`: the transaction started by the first record of the same `write()` call;
 * - a number: the LSN of an earlier record that started the transaction.
 */
export type TxnRef = number | "self" | "first";

/** Fields of a record to append; the log assigns `lsn`. */
export interface AppendFields {
  /** WRITE, COMMIT or DELETE. */
  op: Op;
  /** The object key. */
  key: string;
  /** Bit set of Flag; default 0. */
  flags?: number;
  /** Default "self". */
  txn?: TxnRef;
  /** Default 0. */
  offset?: number;
  /** Default the log's clock (`NvLogOptions.clock`). */
  mtime?: number;
}

/** One record to append. */
export interface AppendRecord {
  /** Header fields; the LSN is assigned by the log. */
  fields: AppendFields;
  /** Default empty. */
  payload?: Uint8Array;
}

/**
 * The result of a write: the records are in the file (page cache) when this is
 * returned, and `durable` resolves once an fdatasync covers them (or rejects if
 * it fails; the log then refuses further writes).
 */
export interface WriteTicket {
  /** The records written, in LSN order. */
  records: Appended[];
  /** LSN of the last record written. */
  lastLsn: number;
  /** Resolves once an fdatasync covers these records. */
  durable: Promise<void>;
}

/** A record read back from the log. */
export interface LogRecord {
  /** The record's header (checksum re-verified on read). */
  header: FrameHeader;
  /** Where its payload lies. */
  position: LogPosition;
  /** The payload of a COMMIT (e.g. the ETag), read along with the header. */
  inline?: Uint8Array;
}

/** What {@link NvLog.open} found and did. */
export interface RecoveryReport {
  /** Segment files open after recovery. */
  segments: number;
  /** Valid records found (and kept). */
  records: number;
  /** Lowest LSN held. */
  firstLsn: number;
  /** Highest LSN held (0 for a new log). */
  lastLsn: number;
  /** Set when a torn tail was cut off the last segment. */
  dropped?: {
    /** File name of the last segment. */
    segment: string;
    /** Where it was cut (end of the last valid frame). */
    offset: number;
    /** Bytes removed. */
    bytes: number;
    /** Why the first dropped frame was invalid. */
    reason: string;
  };
  /** Set when open() finished a reset() that a crash interrupted: the reset's last LSN. */
  completedReset?: number;
}

/** Counters of an open log. */
export interface NvLogStats {
  /** Lowest LSN held. */
  firstLsn: number;
  /** Highest LSN written. */
  lastLsn: number;
  /** Highest LSN fdatasynced. */
  durableLsn: number;
  /** Segment files. */
  segments: number;
  /** Records written since open. */
  records: number;
  /** write()/writeFrames() calls since open. */
  writes: number;
  /** Frame bytes written since open. */
  bytesWritten: number;
  /** Group-commit rounds (each covers every write queued before it started). */
  groupCommits: number;
  /** fdatasync/fsync calls on segment files (a round may sync a rotated-out segment too). */
  fdatasyncs: number;
  /** New segments started since open. */
  rotations: number;
}

/** Result of {@link NvLog.dropThrough}. */
export interface DropReport {
  /** Names of the deleted segment files. */
  segments: string[];
  /** Lowest LSN still held afterwards. */
  firstLsn: number;
}

/** The fields a frame carries, as given to the encoder. */
export type { FrameFields };

/**
 * Field types of a log frame.
 *
 * @module
 */
import type { Op } from "./constants.ts";

/** The caller-chosen fields of a frame (everything but lengths and digests). */
export interface FrameFields {
  /** Log sequence number, ≥ 1. */
  lsn: number;
  /** WRITE, COMMIT or DELETE. */
  op: Op;
  /** Bit set of {@link Flag}. */
  flags: number;
  /** Object key: 1..1024 bytes of UTF-8, no NUL. */
  key: string;
  /** LSN of the transaction's first record (== lsn for COMMIT_NOW writes and DELETE). */
  txn: number;
  /** WRITE: object byte offset of the payload; COMMIT with REPLACE: the object size; else 0. */
  offset: number;
  /** Modification time, ms since epoch. */
  mtime: number;
}

/** A decoded, checksum-verified header. */
export interface FrameHeader extends FrameFields {
  /** 96 + keyLength + payloadLength. */
  frameLength: number;
  /** UTF-8 length of the key. */
  keyLength: number;
  /** Payload bytes following the key. */
  payloadLength: number;
  /** BLAKE3 of the payload (32 bytes). */
  payloadDigest: Uint8Array;
}

/** A whole validated frame (header checksum and payload digest both verified). */
export interface Frame {
  /** The verified header. */
  header: FrameHeader;
  /** The frame's bytes, exactly as on disk and on the wire. */
  bytes: Uint8Array;
  /** The payload: a view into `bytes`. */
  payload: Uint8Array;
  /** Standalone BLAKE3 digests (32 B each) of the payload's full 4 KiB blocks at 4 KiB-aligned payload positions. */
  blockDigests: Uint8Array;
}

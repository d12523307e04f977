/**
 * Constants of the log frame: the NVLOG record layout, identical on disk and on
 * the wire (docs/internals.md, section 2).
 *
 * ```
 * off size field
 * 0   4   magic 0x474C5352 ("RSLG" as little-endian bytes)
 * 4   4   frameLength = 96 + keyLength + payloadLength
 * 8   8   lsn
 * 16  1   op (1 WRITE, 2 COMMIT, 3 DELETE)
 * 17  1   flags (bit0 COMMIT_NOW, bit1 REPLACE, bit2 BLOCK_DIGESTS)
 * 18  2   keyLength (1..1024)
 * 20  4   payloadLength (0..1 MiB)
 * 24  8   txn (LSN of the transaction's first record)
 * 32  8   offset (WRITE: object offset; COMMIT+REPLACE: object size)
 * 40  8   mtime (ms since epoch)
 * 48  32  payloadDigest = BLAKE3(payload); with BLOCK_DIGESTS, BLAKE3 of
 *           "refsync-blocks-1" ++ u64 payloadLength ++ the standalone BLAKE3 of
 *           each full 4 KiB block ++ the payload's last (payloadLength % 4096) bytes
 * 80  16  headerChecksum = BLAKE3(bytes 0..79 ++ key)[0..16]
 * 96      key, then payload
 * ```
 *
 * @module
 */

/** The magic number; stored little-endian it reads "RSLG". */
export const FRAME_MAGIC = 0x474c5352;
/** Size of the fixed header in bytes. */
export const HEADER_SIZE = 96;
/** Largest key in UTF-8 bytes. */
export const MAX_KEY_LENGTH = 1024;
/** Largest payload of one frame (1 MiB). */
export const MAX_PAYLOAD_LENGTH = 1 << 20;
/** Largest possible frame: the bound of every frame buffer. */
export const MAX_FRAME_LENGTH: number = HEADER_SIZE + MAX_KEY_LENGTH + MAX_PAYLOAD_LENGTH;
/** Bytes of BLAKE3 in `payloadDigest`. */
export const DIGEST_LENGTH = 32;
/** Bytes of the truncated BLAKE3 kept as `headerChecksum`. */
export const HEADER_CHECKSUM_LENGTH = 16;

/** Field offsets inside the header. */
export const Off = {
  magic: 0,
  frameLength: 4,
  lsn: 8,
  op: 16,
  flags: 17,
  keyLength: 18,
  payloadLength: 20,
  txn: 24,
  offset: 32,
  mtime: 40,
  payloadDigest: 48,
  headerChecksum: 80,
} as const;

/** Record operations. */
export const Op = {
  /** Bytes of an object at `offset`. */
  WRITE: 1,
  /** Ends the transaction `txn`; with REPLACE, `offset` is the object size. */
  COMMIT: 2,
  /** Removes the object; no payload. */
  DELETE: 3,
} as const;
/** One of {@link Op}. */
export type Op = typeof Op[keyof typeof Op];

/** Record flags (bit set). */
export const Flag = {
  /** A WRITE that is its own transaction, applied at once. */
  COMMIT_NOW: 1,
  /** The transaction replaces the whole object. */
  REPLACE: 2,
  /**
   * The payload digest is derived from the payload's block digests (see the
   * layout above), so one pass over the bytes gives both. Not on a one-record
   * PUT (COMMIT_NOW and REPLACE): its digest is the object's ETag.
   */
  BLOCK_DIGESTS: 4,
} as const;
/** Every defined flag bit; any other bit is invalid. */
export const ALL_FLAGS = Flag.COMMIT_NOW | Flag.REPLACE | Flag.BLOCK_DIGESTS;

/** Human name of an op, for messages. */
export function opName(op: number): string {
  return op === Op.WRITE
    ? "WRITE"
    : op === Op.COMMIT
    ? "COMMIT"
    : op === Op.DELETE
    ? "DELETE"
    : `op ${op}`;
}

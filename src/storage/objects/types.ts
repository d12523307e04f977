/**
 * The object store's public types: its options and hooks, and what its calls
 * return.
 *
 * @module
 */
import type { Logger } from "../../logging/mod.ts";
import type { Appended } from "../log/mod.ts";
import type { FileSystem } from "../fs/file-ops.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { Random } from "../../runtime/random.ts";
import type { Superblock } from "../volume/superblock.ts";
import type { WrittenBlocks } from "../volume/written.ts";

/** Largest payload of one log record: a bigger write is a multi-record transaction. */
export const RECORD_PAYLOAD_BYTES = 1 << 20;
/** Default {@link StoreOptions.spaceReserve}: 8 MiB. */
export const DEFAULT_SPACE_RESERVE = 8 << 20;

/** Tuning and hooks of a store. */
export interface StoreOptions {
  /** A CP starts when this many dirty bytes accumulate; writers wait at twice it. */
  cpDirtyBytes: number;
  /** Largest object a write may create (`too_large` beyond). */
  maxObjectBytes: number;
  /** Log segment size. */
  logSegmentBytes?: number;
  /**
   * Called with each batch of appended records as soon as they are written
   * locally (the local fsync runs meanwhile); resolves once the write may be
   * acknowledged as far as the mirror goes: `true` when the mirror holds them
   * durably and is in sync, `false` when they are acknowledged on local
   * durability only (the available policy while out of sync:
   * {@link WriteResult.mirrored}). A write is acknowledged only once the
   * local log is durable too.
   */
  replicate?: (written: Appended[]) => Promise<boolean>;
  /**
   * Called after a CP committed locally; resolves `"synced"` once the mirror
   * committed it too, or `"deferred"` when the mirror will not take it now
   * (out of sync, or a catch-up will bring the destination past it): the CP
   * stays committed here, the store does not retry its sync, and what it
   * replaced is kept until {@link ObjectStore.mirrorCaughtUp}. Until it
   * settles no next CP starts; a rejection keeps the CP owed (retried at the
   * next CP).
   */
  syncCheckpoint?: (cp: CheckpointResult) => Promise<SyncOutcome>;
  /**
   * Mirror mode (a destination): the log is not replayed into the dirty
   * layers; reads serve the last committed CP, and CPs arrive from the source
   * ({@link ObjectStore.adoptCommitted}) until {@link ObjectStore.promote}.
   */
  mirror?: boolean;
  /**
   * With `mirror`: a source's data directory becomes a rejoining destination
   * (`refsync dest --rejoin`, a failback) instead of being refused; see
   * {@link ObjectStore.rejoin}.
   */
  rejoin?: boolean;
  /** Resolves when the mirror is ready for CP syncs (its first handshake); CPs wait for it. */
  ready?: () => Promise<void>;
  /**
   * Resolves once the mirror holds every record up to `lsn` durably (the
   * last record whose effect a CP holds). A CP commits locally only then, so
   * no committed CP ever holds a write the mirror did not acknowledge; when it
   * rejects, the CP is abandoned.
   */
  mirrorHolds?: (lsn: number) => Promise<void>;
  /**
   * The highest LSN the mirror confirmed durable: a write is acknowledged
   * only at or below it (asserted after {@link StoreOptions.replicate}
   * resolved).
   */
  mirrorAckedLsn?: () => number;
  /**
   * A read stream (or a verify's digest list) not pulled for this long (ms)
   * releases the CP it pins and errors if pulled later: an abandoned or
   * stalled reader never stops space reclamation. Default 30 s.
   */
  readIdleMs?: number;
  /** A reader that holds back reclamation for longer than this (ms) is logged. Default 5 min. */
  pinWarnMs?: number;
  /** Where CP, promotion and reader events go (default: the root logger). */
  logger?: Logger;
  /**
   * Free bytes on the data directory's filesystem that client writes may not
   * take: what CPs (catalog and map blocks), DELETE and COMMIT records use
   * when the disk is otherwise full. Default {@link DEFAULT_SPACE_RESERVE}.
   */
  spaceReserve?: number;
  /** The file system of the data directory (tests inject faults; the simulator its own disk). Default node:fs. */
  fileOps?: FileSystem;
  /** Time: mtimes, durations, read-idle timers (the simulator's own). Default the system clock. */
  clock?: Clock;
  /** Randomness: a new volume's id (the simulator's, seeded). Default the OS CSPRNG. */
  random?: Random;
  /** Called when a CP of this store committed locally, with its duration (metrics). */
  cpCommitted?: (durationMs: number) => void;
}

/** How a CP's sync to the mirror ended ({@link StoreOptions.syncCheckpoint}). */
export type SyncOutcome = "synced" | "deferred";

/** How {@link ObjectStore.write} writes a body (see there). */
export interface WriteOptions {
  replace: boolean;
  offset: number;
  length?: number;
  precondition?: Precondition;
  /** The metadata blob to commit with a whole PUT, called once the body has ended. */
  meta?: () => Uint8Array;
}

/**
 * A condition on the object as it is when a write or delete is applied
 * (`null`: absent); it throws to refuse, and then nothing is applied. It may
 * run more than once: early, before the body is read, and at the commit.
 * Reading `etag` of an object whose ETag is unknown hashes it.
 */
export type Precondition = (current: ObjectInfo | null) => void;

/** Size, ETag and mtime of an object. */
export interface ObjectInfo {
  key: string;
  size: number;
  mtime: number;
  etag: string;
  /** The metadata blob written with the object ({@link ObjectStore.write}'s `meta`), or null. */
  meta: Uint8Array | null;
}

/** The outcome of an acknowledged write. */
export interface WriteResult {
  key: string;
  size: number;
  /** BLAKE3 hex of the object, or null after a ranged write (computed by HEAD/GET). */
  etag: string | null;
  lsn: number;
  created: boolean;
  /**
   * The mirror held every record of this write when it was acknowledged and
   * was in sync (RPO 0): the `Refsync-Mirror: in-sync` header. False when it
   * was acknowledged on local durability only, and without a mirror.
   */
  mirrored: boolean;
}

/** A committed CP, with what the CP sync needs to send it. */
export interface CheckpointResult {
  superblock: Superblock;
  superblockBytes: Uint8Array;
  /** The blocks it wrote: digests, and how the destination can build each from what it holds. */
  written: WrittenBlocks;
  /** Blocks live in the previous CP and not in this one. */
  released: number[];
  /** All-zero data blocks that became holes (no block, nothing to send). */
  zeroBlocks: number;
  previousDigest: Uint8Array;
  durationMs: number;
}

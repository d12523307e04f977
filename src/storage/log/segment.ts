/**
 * One segment file of the NVLOG: `<first LSN as 16 hex digits>.seg`, frames
 * back to back, appended with positioned writes and read with positioned reads.
 *
 * @module
 */
import { join } from "node:path";
import type { FileSystem } from "../fs/file-ops.ts";

/** File name suffix of segments. */
export const SEGMENT_SUFFIX = ".seg";
const NAME = /^([0-9a-f]{16})\.seg$/;

/** `<firstLsn as 16 lowercase hex digits>.seg` */
export function segmentName(firstLsn: number): string {
  if (!Number.isSafeInteger(firstLsn) || firstLsn < 1) {
    throw new Error(`invariant: segment first LSN ${firstLsn} is a safe integer ≥ 1`);
  }
  return firstLsn.toString(16).padStart(16, "0") + SEGMENT_SUFFIX;
}

/** The first LSN a segment file name encodes, or undefined for any other file. */
export function parseSegmentName(name: string): number | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const v = parseInt(m[1], 16);
  return Number.isSafeInteger(v) && v >= 1 ? v : undefined;
}

/** An open segment and the offsets of its frames. */
export class Segment {
  readonly firstLsn: number;
  readonly name: string;
  readonly path: string;
  /** Open file descriptor (of {@link Segment.ops}), or -1 once closed. */
  fd: number;
  /** End of the last whole frame = where the next frame goes. */
  size = 0;
  /** Frame start offsets; `offsets[lsn - firstLsn]`. Small integers, so a packed array. */
  readonly offsets: number[] = [];
  /** The file system behind opens, reads, writes and truncation. */
  readonly ops: FileSystem;

  private constructor(dir: string, firstLsn: number, fd: number, ops: FileSystem) {
    this.firstLsn = firstLsn;
    this.name = segmentName(firstLsn);
    this.path = join(dir, this.name);
    this.fd = fd;
    this.ops = ops;
  }

  /** Opens an existing segment for reading and writing. */
  static openExisting(dir: string, firstLsn: number, ops: FileSystem): Segment {
    return new Segment(dir, firstLsn, ops.openSync(join(dir, segmentName(firstLsn)), "r+"), ops);
  }

  /** Creates a new, empty segment; fails if the file exists. */
  static create(dir: string, firstLsn: number, ops: FileSystem): Segment {
    return new Segment(dir, firstLsn, ops.openSync(join(dir, segmentName(firstLsn)), "wx+"), ops);
  }

  /** Reads exactly `length` bytes at `position` unless the file ends first; returns bytes read. */
  read(into: Uint8Array, length: number, position: number): number {
    let done = 0;
    while (done < length) {
      const n = this.ops.readSync(this.fd, into, done, length - done, position + done);
      if (n === 0) break; // end of file
      done += n;
    }
    return done;
  }

  /** Writes all of `bytes` at `position` (a short write is retried, not ignored). */
  write(bytes: Uint8Array, position: number): void {
    let done = 0;
    while (done < bytes.length) {
      const n = this.ops.writeSync(this.fd, bytes, done, bytes.length - done, position + done);
      if (n <= 0) throw new Error(`short write at ${position + done}`);
      done += n;
    }
  }

  /** Cuts the file at `length` bytes (the caller keeps `size` and `offsets` in step). */
  cut(length: number): void {
    this.ops.ftruncateSync(this.fd, length);
  }

  /** LSN of the last frame, or firstLsn - 1 when empty. */
  get lastLsn(): number {
    return this.firstLsn + this.offsets.length - 1;
  }

  /** True when `lsn` is a frame of this segment. */
  has(lsn: number): boolean {
    return lsn >= this.firstLsn && lsn <= this.lastLsn;
  }

  /** File offset of frame `lsn`. */
  frameOffset(lsn: number): number {
    if (!this.has(lsn)) throw new Error(`invariant: LSN ${lsn} is in segment ${this.name}`);
    return this.offsets[lsn - this.firstLsn];
  }

  /** Byte length of frame `lsn` (from the next frame's offset, or the end). */
  frameLength(lsn: number): number {
    const i = lsn - this.firstLsn;
    const end = i + 1 < this.offsets.length ? this.offsets[i + 1] : this.size;
    return end - this.frameOffset(lsn);
  }

  /** Forgets frames from `lsn` on and cuts the file there (the caller syncs). */
  truncateFrom(lsn: number): void {
    const at = lsn > this.lastLsn ? this.size : this.frameOffset(lsn);
    this.cut(at);
    this.offsets.length = Math.max(0, lsn - this.firstLsn);
    this.size = at;
  }

  close(): void {
    if (this.fd >= 0) {
      const fd = this.fd;
      this.fd = -1;
      this.ops.closeSync(fd);
    }
  }
}

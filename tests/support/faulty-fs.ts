/**
 * A disk that fills up, for unit tests of the log, the volume and the store:
 * real files (node:fs) behind a byte budget. A write beyond the budget is cut
 * short the way the kernel does it (the bytes that fit, then ENOSPC on the
 * next call), and `availableBytes` reports what is left of the budget.
 *
 * @example
 * ```ts
 * const disk = new FullDisk();
 * const log = await NvLog.open(dir, { fileOps: disk });
 * disk.budget = 100; // the next append runs out of space
 * disk.budget = Infinity; // space is back
 * ```
 *
 * @module
 */
import { NodeFileSystem } from "../../src/storage/fs/file-ops.ts";

/** The error node:fs throws on a full disk. */
export function enospc(): Error {
  return Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
}

/** The file system over node:fs with a byte budget for writes. */
export class FullDisk extends NodeFileSystem {
  /** Bytes writes may still take (Infinity: the real disk's space). */
  budget = Infinity;
  /** ENOSPC errors raised so far. */
  failures = 0;

  override writeSync(
    fd: number,
    buf: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): number {
    if (this.budget <= 0) {
      this.failures++;
      throw enospc();
    }
    const n = Math.min(length, this.budget);
    const written = super.writeSync(fd, buf, offset, n, position);
    this.budget -= written;
    return written;
  }

  override availableBytes(path: string): number {
    return Number.isFinite(this.budget) ? this.budget : super.availableBytes(path);
  }
}

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
import { type FileOps, nodeFileOps } from "../../src/storage/fs/file-ops.ts";

/** The error node:fs throws on a full disk. */
export function enospc(): Error {
  return Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
}

/** {@link FileOps} over node:fs with a byte budget for writes. */
export class FullDisk implements FileOps {
  /** Bytes writes may still take (Infinity: the real disk's space). */
  budget = Infinity;
  /** ENOSPC errors raised so far. */
  failures = 0;

  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    if (this.budget <= 0) {
      this.failures++;
      throw enospc();
    }
    const n = Math.min(length, this.budget);
    const written = nodeFileOps.writeSync(fd, buf, offset, n, position);
    this.budget -= written;
    return written;
  }

  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    return nodeFileOps.readSync(fd, buf, offset, length, position);
  }

  ftruncateSync(fd: number, length: number): void {
    nodeFileOps.ftruncateSync(fd, length);
  }

  fdatasync(fd: number): Promise<void> {
    return nodeFileOps.fdatasync(fd);
  }

  fdatasyncSync(fd: number): void {
    nodeFileOps.fdatasyncSync(fd);
  }

  availableBytes(path: string): number {
    return Number.isFinite(this.budget) ? this.budget : nodeFileOps.availableBytes(path);
  }
}

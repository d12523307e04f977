/**
 * The file operations the NVLOG and the volume perform on open file
 * descriptors, behind one small interface so that tests can put a faulty or
 * simulated disk under them, and the one place where a full disk becomes the
 * domain error `no_space`.
 *
 * Path operations (open, unlink, readdir, rename) are not routed here: they
 * allocate no data blocks.
 *
 * @module
 */
import fs from "node:fs";
import { promisify } from "node:util";
import { RefsyncError } from "../../errors/mod.ts";

/** Positioned reads and writes, truncation, syncs and free space. */
export interface FileOps {
  /** pwrite(2): bytes written (may be fewer than `length`). */
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /** pread(2): bytes read (0 at end of file). */
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /** ftruncate(2). */
  ftruncateSync(fd: number, length: number): void;
  /** fdatasync(2) off the event loop. */
  fdatasync(fd: number): Promise<void>;
  /** fdatasync(2) on the event loop (rare: a log rotation). */
  fdatasyncSync(fd: number): void;
  /** Bytes an unprivileged writer may still allocate on the filesystem holding `path` (statfs). */
  availableBytes(path: string): number;
}

const fdatasyncAsync = promisify(fs.fdatasync);

/**
 * The real thing: node:fs. `availableBytes` is Infinity where statfs is not
 * available, so space accounting then relies on ENOSPC alone.
 *
 * @example
 * ```ts
 * import { nodeFileOps } from "./file-ops.ts";
 * const free = nodeFileOps.availableBytes("."); // e.g. 12_884_901_888
 * ```
 */
export const nodeFileOps: FileOps = {
  writeSync: (fd, buf, offset, length, position) => fs.writeSync(fd, buf, offset, length, position),
  readSync: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  ftruncateSync: (fd, length) => fs.ftruncateSync(fd, length),
  fdatasync: (fd) => fdatasyncAsync(fd),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  availableBytes(path) {
    try {
      const s = fs.statfsSync(path);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return Infinity;
    }
  },
};

/**
 * True when `e` (or an error in its `cause` chain) says the disk or a quota
 * is full. node:fs and the Deno APIs both throw an Error whose `code` is
 * "ENOSPC" (or "EDQUOT"); Deno has no `Deno.errors` class for it.
 *
 * @example
 * ```ts
 * import { isNoSpace } from "./file-ops.ts";
 * isNoSpace(Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" })); // true
 * ```
 */
export function isNoSpace(e: unknown): boolean {
  for (let cur = e, depth = 0; cur instanceof Error && depth < 8; depth++) {
    if (cur instanceof RefsyncError) return cur.code === "no_space";
    const code = (cur as { code?: unknown }).code;
    if (code === "ENOSPC" || code === "EDQUOT") return true;
    cur = cur.cause;
  }
  return false;
}

/**
 * `e` as the domain error `no_space` when it is a full disk (saying what was
 * being written), else `e` itself.
 *
 * @example
 * ```ts
 * import { asNoSpace } from "./file-ops.ts";
 * declare function write(): void;
 * try { write(); } catch (e) { throw asNoSpace(e, "the log"); }
 * ```
 */
export function asNoSpace(e: unknown, what: string): unknown {
  if (e instanceof RefsyncError || !isNoSpace(e)) return e;
  const err = new RefsyncError("no_space", `no space left on the device writing ${what}`);
  err.cause = e;
  return err;
}

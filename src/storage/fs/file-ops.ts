/**
 * The file system under the NVLOG, the volume and the data directory, behind
 * one interface: fd operations (positioned reads and writes, truncation,
 * syncs), path operations (open, create, rename, unlink, readdir, mkdir,
 * directory fsync), the data directory's lock, and free space. node:fs is the
 * real thing ({@link nodeFileOps}); tests put a filling disk under it, and the
 * simulator an in-memory disk that loses what was not synced at a crash
 * ({@link MemoryFileSystem} in `./memory.ts`). It is also the one place where
 * a full disk becomes the domain error `no_space`.
 *
 * @module
 */
import fs from "node:fs";
import { promisify } from "node:util";
import { RefsyncError } from "../../errors/mod.ts";

/** Positioned reads and writes, truncation, syncs and free space on open file descriptors. */
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

/** How a file is opened: node:fs flags (`r+` read-write; `w` create or empty; `wx+` create new). */
export type OpenFlags = "r" | "r+" | "w" | "wx+";

/** A held exclusive lock on a file (the data directory's `lock`). */
export interface FileLock {
  /** Replaces the lock file's content (the holder's pid). */
  write(bytes: Uint8Array): void;
  /** Releases the lock (and closes the file). */
  release(): void;
}

/**
 * Everything the storage modules do to files. Errors are node-style: an
 * Error whose `code` is `ENOENT`, `EEXIST`, `ENOSPC`, ...
 */
export interface FileSystem extends FileOps {
  /** open(2): an fd for `path`. */
  openSync(path: string, flags: OpenFlags, mode?: number): number;
  closeSync(fd: number): void;
  /** The size of the open file, in bytes (fstat). */
  sizeSync(fd: number): number;
  /** fsync(2) of an open file (data and metadata). */
  fsyncSync(fd: number): void;
  /** fsync(2) of a directory: the entries created, renamed or removed in it become durable. */
  fsyncDirSync(dir: string): void;
  mkdirSync(path: string, opts?: { recursive?: boolean }): void;
  /** The names in a directory (unsorted). */
  readdirSync(path: string): string[];
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  /** True when `path` exists. */
  existsSync(path: string): boolean;
  /** The whole content of a file. */
  readFileSync(path: string): Uint8Array;
  /**
   * Opens (creating) `path` and takes an exclusive lock on it without
   * waiting: null when another process holds it. The lock ends with its
   * holder, even when the holder dies.
   */
  tryLockSync(path: string): FileLock | null;
}

const fdatasyncAsync = promisify(fs.fdatasync);

/**
 * The real thing: node:fs (and Deno's flock for the lock). `availableBytes`
 * is Infinity where statfs is not available, so space accounting then relies
 * on ENOSPC alone. A class, so that a test disk can override a few calls.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "./file-ops.ts";
 * class TinyDisk extends NodeFileSystem {
 *   override availableBytes(_path: string): number {
 *     return 1 << 20;
 *   }
 * }
 * const free = new TinyDisk().availableBytes("."); // 1048576
 * ```
 */
export class NodeFileSystem implements FileSystem {
  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    return fs.writeSync(fd, buf, offset, length, position);
  }
  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    return fs.readSync(fd, buf, offset, length, position);
  }
  ftruncateSync(fd: number, length: number): void {
    fs.ftruncateSync(fd, length);
  }
  fdatasync(fd: number): Promise<void> {
    return fdatasyncAsync(fd);
  }
  fdatasyncSync(fd: number): void {
    fs.fdatasyncSync(fd);
  }
  availableBytes(path: string): number {
    try {
      const s = fs.statfsSync(path);
      return Number(s.bavail) * Number(s.bsize);
    } catch {
      return Infinity;
    }
  }
  openSync(path: string, flags: OpenFlags, mode?: number): number {
    return fs.openSync(path, flags, mode);
  }
  closeSync(fd: number): void {
    fs.closeSync(fd);
  }
  sizeSync(fd: number): number {
    return fs.fstatSync(fd).size;
  }
  fsyncSync(fd: number): void {
    fs.fsyncSync(fd);
  }
  fsyncDirSync(dir: string): void {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  mkdirSync(path: string, opts?: { recursive?: boolean }): void {
    fs.mkdirSync(path, opts);
  }
  readdirSync(path: string): string[] {
    return fs.readdirSync(path);
  }
  renameSync(from: string, to: string): void {
    fs.renameSync(from, to);
  }
  unlinkSync(path: string): void {
    fs.unlinkSync(path);
  }
  existsSync(path: string): boolean {
    return fs.existsSync(path);
  }
  readFileSync(path: string): Uint8Array {
    const buf = fs.readFileSync(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }
  tryLockSync(path: string): FileLock | null {
    const file = Deno.openSync(path, { read: true, write: true, create: true });
    try {
      if (!file.tryLockSync(true)) {
        file.close();
        return null;
      }
    } catch (e) {
      file.close();
      throw e;
    }
    return {
      write(bytes) {
        file.truncateSync(0);
        for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
      },
      release: () => file.close(),
    };
  }
}

/**
 * The real file system.
 *
 * @example
 * ```ts
 * import { nodeFileOps } from "./file-ops.ts";
 * const free = nodeFileOps.availableBytes("."); // e.g. 12_884_901_888
 * ```
 */
export const nodeFileOps: FileSystem = new NodeFileSystem();

/**
 * True when `e` has the node-style error `code` (ENOENT, EEXIST, ...).
 *
 * @example
 * ```ts
 * import { hasCode } from "./file-ops.ts";
 * hasCode(Object.assign(new Error("gone"), { code: "ENOENT" }), "ENOENT"); // true
 * ```
 */
export function hasCode(e: unknown, code: string): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === code;
}

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

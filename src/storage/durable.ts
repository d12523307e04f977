/**
 * Durable file-system steps the storage modules share: a directory entry is
 * durable only once its directory is fsynced, and a small file replaced in
 * place can be torn by a crash, so it is written beside and renamed over.
 *
 * @module
 */
import { dirname } from "node:path";
import { type FileSystem, nodeFileOps } from "./fs/file-ops.ts";

/**
 * Fsyncs the directory `dir`, making the files created, renamed or removed in
 * it durable.
 *
 * @example
 * ```ts
 * import { fsyncDir } from "./durable.ts";
 * fsyncDir("data/source/log");
 * ```
 */
export function fsyncDir(dir: string, fs: FileSystem = nodeFileOps): void {
  fs.fsyncDirSync(dir);
}

/**
 * Writes `bytes` to `path` atomically and durably: a crash leaves either the
 * old file or the whole new one, never an empty or half-written file
 * (`path.tmp`, fdatasync, rename over `path`, fsync of the directory).
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./durable.ts";
 * writeFileAtomic("data/source/role", new TextEncoder().encode('{"role":"source"}\n'));
 * ```
 */
export function writeFileAtomic(
  path: string,
  bytes: Uint8Array,
  mode = 0o644,
  fs: FileSystem = nodeFileOps,
): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, "w", mode);
  try {
    for (let done = 0; done < bytes.length;) {
      done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
    }
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path);
  fsyncDir(dirname(path), fs);
}

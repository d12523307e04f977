/**
 * An in-memory {@link FileSystem} for the simulator and for tests: files and
 * directories in memory, with the crash semantics of a real disk made strict
 * (the fault model of LazyFS and of TigerBeetle's `src/testing/storage.zig`):
 *
 * - a write lands in the "page cache": reads see it at once, a crash loses it
 *   unless an fdatasync/fsync of its file completed since;
 * - a created, renamed or removed directory entry is durable only once its
 *   directory is fsynced;
 * - at a {@link MemoryFileSystem.crash} every unsynced write of a file is
 *   lost, or (with {@link CrashFaults}) some of them survive: each
 *   independently, the last one kept possibly torn (only a prefix of its
 *   bytes reached the disk) and possibly with a flipped bit;
 * - locks ({@link MemoryFileSystem.tryLockSync}) end with the process that
 *   held them, at a crash too; descriptors of a crashed process are invalid,
 *   and an fdatasync it started never completes (its continuation never runs).
 *
 * `capacity` bounds the bytes all files hold: a write beyond it is cut short
 * and the next fails with ENOSPC, as the kernel does.
 *
 * @example
 * ```ts
 * import { MemoryFileSystem } from "./memory.ts";
 * const disk = new MemoryFileSystem();
 * disk.mkdirSync("data", { recursive: true });
 * const fd = disk.openSync("data/a", "wx+");
 * disk.writeSync(fd, new Uint8Array([1, 2, 3]), 0, 3, 0);
 * disk.crash(); // neither the file's bytes nor its entry were synced
 * console.assert(!disk.existsSync("data/a"));
 * ```
 *
 * @module
 */
import type { FileLock, FileSystem, OpenFlags } from "./file-ops.ts";

/** How unsynced writes fare at a crash (all lost when absent). */
export interface CrashFaults {
  /** Uniform float in [0, 1): the fault injector's randomness (seeded in the simulator). */
  float(): number;
  /** Chance that an unsynced write survives the crash. */
  keepWrite: number;
  /** Chance that the last surviving write of a file is torn. */
  tear: number;
  /** Chance that the last surviving write of a file has one bit flipped. */
  flipBit: number;
}

/** Options of a {@link MemoryFileSystem}. */
export interface MemoryFileSystemOptions {
  /** Bytes all files may hold together (default unbounded). */
  capacity?: number;
  /**
   * How an asynchronous fdatasync completes: calls `done` later (the
   * simulator delays it on its clock). Default: at the next microtask.
   */
  schedule?: (done: () => void) => void;
}

type Op = { at: number; bytes: Uint8Array } | { truncate: number };

/** Bytes of a file, growable. */
class Bytes {
  buf = new Uint8Array(0);
  size = 0;

  clone(): Bytes {
    const b = new Bytes();
    b.buf = this.buf.slice(0, this.size);
    b.size = this.size;
    return b;
  }

  apply(op: Op): void {
    if ("truncate" in op) this.resize(op.truncate);
    else {
      this.resize(Math.max(this.size, op.at + op.bytes.length));
      this.buf.set(op.bytes, op.at);
    }
  }

  resize(size: number): void {
    if (size > this.buf.length) {
      const grown = new Uint8Array(Math.max(size, this.buf.length * 2, 4096));
      grown.set(this.buf.subarray(0, this.size));
      this.buf = grown;
    } else if (size < this.size) {
      this.buf.fill(0, size, this.size);
    }
    this.size = size;
  }
}

class FileNode {
  readonly kind = "file";
  /** What reads see. */
  data = new Bytes();
  /** What survives a crash. */
  durable = new Bytes();
  /** Writes and truncations since the last sync, in order. */
  pending: Op[] = [];
}

class DirNode {
  readonly kind = "dir";
  entries = new Map<string, Node>();
  /** The entries as of the last fsync of this directory. */
  durable = new Map<string, Node>();
}

type Node = FileNode | DirNode;

interface OpenFile {
  node: FileNode;
  readable: boolean;
  writable: boolean;
}

function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/** An in-memory file system with strict crash semantics. */
export class MemoryFileSystem implements FileSystem {
  #root = new DirNode();
  #fds = new Map<number, OpenFile>();
  #nextFd = 3;
  #locks = new Set<FileNode>();
  /** Bumped at each crash: syncs of an earlier process never complete. */
  #generation = 0;
  readonly #capacity: number;
  readonly #schedule: (done: () => void) => void;
  #used = 0;

  constructor(options: MemoryFileSystemOptions = {}) {
    this.#capacity = options.capacity ?? Infinity;
    this.#schedule = options.schedule ?? ((done) => queueMicrotask(done));
  }

  /** Bytes the files hold now. */
  get usedBytes(): number {
    return this.#used;
  }

  /**
   * The machine loses power: only what was synced stays (plus what `faults`
   * lets survive); every descriptor and lock of the process is gone.
   */
  crash(faults?: CrashFaults): void {
    this.#generation++;
    this.#fds.clear();
    this.#locks.clear();
    const seen = new Set<Node>();
    const revert = (dir: DirNode) => {
      dir.entries = new Map(dir.durable);
      for (const node of dir.entries.values()) {
        if (seen.has(node)) continue;
        seen.add(node);
        if (node.kind === "dir") revert(node);
        else this.#revertFile(node, faults);
      }
    };
    revert(this.#root);
    this.#used = 0;
    for (const node of seen) if (node.kind === "file") this.#used += node.data.size;
  }

  #revertFile(node: FileNode, faults?: CrashFaults): void {
    const kept: Op[] = [];
    if (faults) {
      for (const op of node.pending) if (faults.float() < faults.keepWrite) kept.push(op);
    }
    const last = kept[kept.length - 1];
    if (last && "at" in last && last.bytes.length > 0 && faults) {
      let bytes = last.bytes;
      if (faults.float() < faults.tear) {
        bytes = bytes.subarray(0, Math.floor(faults.float() * bytes.length));
      }
      if (bytes.length > 0 && faults.float() < faults.flipBit) {
        bytes = bytes.slice();
        const bit = Math.floor(faults.float() * bytes.length * 8);
        bytes[bit >> 3] ^= 1 << (bit & 7);
      }
      kept[kept.length - 1] = { at: last.at, bytes };
    }
    for (const op of kept) node.durable.apply(op);
    node.pending = [];
    node.data = node.durable.clone();
  }

  /**
   * Flips bit `bit` of the file at `path` at rest: what its reads see and,
   * when `lasting`, what survives a crash too (the medium rotted); otherwise
   * only the cached copy is damaged, and a crash reloads the synced bytes. A
   * later write over the bit replaces it, as a rewrite of the sector does.
   * The simulator's faults after an fsync (the crash faults hit only unsynced
   * writes).
   *
   * @example
   * ```ts
   * import { MemoryFileSystem } from "./memory.ts";
   * const disk = new MemoryFileSystem();
   * const fd = disk.openSync("f", "wx+");
   * disk.writeSync(fd, new Uint8Array([0]), 0, 1, 0);
   * disk.fdatasyncSync(fd);
   * disk.flipBit("f", 3, true);
   * console.assert(disk.readFileSync("f")[0] === 8);
   * ```
   */
  flipBit(path: string, bit: number, lasting: boolean): void {
    const file = this.#file(path);
    const at = bit >> 3;
    if (at >= file.data.size) throw new Error(`invariant: bit ${bit} is past the end of ${path}`);
    file.data.buf[at] ^= 1 << (bit & 7);
    if (lasting && at < file.durable.size) file.durable.buf[at] ^= 1 << (bit & 7);
  }

  // ---- paths

  #walk(path: string): { parent: DirNode | null; name: string; node: Node | undefined } {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    let dir: DirNode = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const next = dir.entries.get(parts[i]);
      if (next === undefined) throw fsError("ENOENT", `no such file or directory, '${path}'`);
      if (next.kind !== "dir") throw fsError("ENOTDIR", `not a directory, '${path}'`);
      dir = next;
    }
    if (parts.length === 0) return { parent: null, name: "", node: this.#root };
    const name = parts[parts.length - 1];
    return { parent: dir, name, node: dir.entries.get(name) };
  }

  #dir(path: string): DirNode {
    const { node } = this.#walk(path);
    if (node === undefined) throw fsError("ENOENT", `no such file or directory, '${path}'`);
    if (node.kind !== "dir") throw fsError("ENOTDIR", `not a directory, '${path}'`);
    return node;
  }

  #file(path: string): FileNode {
    const { node } = this.#walk(path);
    if (node === undefined) throw fsError("ENOENT", `no such file or directory, '${path}'`);
    if (node.kind !== "file") throw fsError("EISDIR", `is a directory, '${path}'`);
    return node;
  }

  openSync(path: string, flags: OpenFlags, _mode?: number): number {
    const { parent, name, node } = this.#walk(path);
    let file: FileNode;
    if (node === undefined) {
      if (flags === "r" || flags === "r+" || parent === null) {
        throw fsError("ENOENT", `no such file or directory, open '${path}'`);
      }
      file = new FileNode();
      parent.entries.set(name, file);
    } else {
      if (flags === "wx+") throw fsError("EEXIST", `file already exists, open '${path}'`);
      if (node.kind !== "file") throw fsError("EISDIR", `is a directory, open '${path}'`);
      file = node;
      if (flags === "w") this.#truncate(file, 0);
    }
    const fd = this.#nextFd++;
    this.#fds.set(fd, { node: file, readable: flags !== "w", writable: flags !== "r" });
    return fd;
  }

  closeSync(fd: number): void {
    this.#open(fd);
    this.#fds.delete(fd);
  }

  #open(fd: number): OpenFile {
    const f = this.#fds.get(fd);
    if (f === undefined) throw fsError("EBADF", `bad file descriptor ${fd}`);
    return f;
  }

  mkdirSync(path: string, opts: { recursive?: boolean } = {}): void {
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");
    let dir = this.#root;
    for (let i = 0; i < parts.length; i++) {
      const next = dir.entries.get(parts[i]);
      if (next === undefined) {
        if (i < parts.length - 1 && !opts.recursive) {
          throw fsError("ENOENT", `no such file or directory, mkdir '${path}'`);
        }
        const made = new DirNode();
        dir.entries.set(parts[i], made);
        dir = made;
      } else if (next.kind !== "dir") {
        throw fsError("ENOTDIR", `not a directory, mkdir '${path}'`);
      } else {
        if (i === parts.length - 1 && !opts.recursive) {
          throw fsError("EEXIST", `file already exists, mkdir '${path}'`);
        }
        dir = next;
      }
    }
  }

  readdirSync(path: string): string[] {
    return [...this.#dir(path).entries.keys()];
  }

  renameSync(from: string, to: string): void {
    const src = this.#walk(from);
    if (src.node === undefined || src.parent === null) {
      throw fsError("ENOENT", `no such file or directory, rename '${from}'`);
    }
    const dst = this.#walk(to);
    if (dst.parent === null) throw fsError("EBUSY", `rename to '${to}'`);
    if (dst.node?.kind === "file") this.#used -= dst.node.data.size;
    src.parent.entries.delete(src.name);
    dst.parent.entries.set(dst.name, src.node);
  }

  unlinkSync(path: string): void {
    const { parent, name, node } = this.#walk(path);
    if (node === undefined || parent === null) {
      throw fsError("ENOENT", `no such file or directory, unlink '${path}'`);
    }
    if (node.kind !== "file") throw fsError("EISDIR", `is a directory, unlink '${path}'`);
    parent.entries.delete(name);
    this.#used -= node.data.size;
  }

  existsSync(path: string): boolean {
    try {
      return this.#walk(path).node !== undefined;
    } catch {
      return false;
    }
  }

  readFileSync(path: string): Uint8Array {
    const file = this.#file(path);
    return file.data.buf.slice(0, file.data.size);
  }

  fsyncDirSync(dir: string): void {
    const node = this.#dir(dir);
    node.durable = new Map(node.entries);
  }

  tryLockSync(path: string): FileLock | null {
    const fd = this.openSync(path, this.existsSync(path) ? "r+" : "w");
    const node = this.#open(fd).node;
    if (this.#locks.has(node)) {
      this.closeSync(fd);
      return null;
    }
    this.#locks.add(node);
    const generation = this.#generation;
    return {
      write: (bytes) => {
        this.ftruncateSync(fd, 0);
        this.writeSync(fd, bytes, 0, bytes.length, 0);
      },
      release: () => {
        if (generation !== this.#generation) return; // the crash released it
        this.#locks.delete(node);
        this.#fds.delete(fd);
      },
    };
  }

  // ---- descriptors

  writeSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.#open(fd);
    if (!f.writable) throw fsError("EBADF", `descriptor ${fd} is not open for writing`);
    const grow = Math.max(0, position + length - f.node.data.size);
    const room = this.#capacity - this.#used;
    let n = length;
    if (grow > room) {
      n = Math.max(0, length - (grow - room));
      if (n === 0) throw fsError("ENOSPC", "no space left on device");
    }
    const bytes = buf.slice(offset, offset + n);
    const before = f.node.data.size;
    const op = { at: position, bytes };
    f.node.data.apply(op);
    f.node.pending.push(op);
    this.#used += f.node.data.size - before;
    return n;
  }

  readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    const f = this.#open(fd);
    if (!f.readable) throw fsError("EBADF", `descriptor ${fd} is not open for reading`);
    const data = f.node.data;
    const n = Math.max(0, Math.min(length, data.size - position));
    buf.set(data.buf.subarray(position, position + n), offset);
    return n;
  }

  ftruncateSync(fd: number, length: number): void {
    const f = this.#open(fd);
    if (!f.writable) throw fsError("EBADF", `descriptor ${fd} is not open for writing`);
    this.#truncate(f.node, length);
  }

  #truncate(node: FileNode, length: number): void {
    const before = node.data.size;
    const op = { truncate: length };
    node.data.apply(op);
    node.pending.push(op);
    this.#used += node.data.size - before;
  }

  sizeSync(fd: number): number {
    return this.#open(fd).node.data.size;
  }

  fdatasync(fd: number): Promise<void> {
    const node = this.#open(fd).node;
    // What it makes durable: the writes before the call (later ones wait for the next sync).
    const last = node.pending[node.pending.length - 1];
    const generation = this.#generation;
    return new Promise((resolve) => {
      this.#schedule(() => {
        if (generation !== this.#generation) return; // the process died first
        // A sync since (fdatasyncSync) may have covered some or all of them already.
        this.#sync(node, last === undefined ? 0 : node.pending.indexOf(last) + 1);
        resolve();
      });
    });
  }

  fdatasyncSync(fd: number): void {
    const node = this.#open(fd).node;
    this.#sync(node, node.pending.length);
  }

  fsyncSync(fd: number): void {
    this.fdatasyncSync(fd);
  }

  #sync(node: FileNode, count: number): void {
    const n = Math.min(count, node.pending.length);
    for (let i = 0; i < n; i++) node.durable.apply(node.pending[i]);
    node.pending.splice(0, n);
  }

  availableBytes(_path: string): number {
    return this.#capacity - this.#used;
  }
}

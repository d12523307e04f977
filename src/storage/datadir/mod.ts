/**
 * The data directory itself: who may use it and what it is.
 *
 * - `DIR/lock`: an exclusive advisory lock (flock) held while a process uses
 *   the directory, with the holder's pid in it. Two stores on one directory
 *   overwrite each other's blocks and log, so a second process is refused at
 *   once. The kernel drops the lock when its holder dies (even by SIGKILL), so
 *   a leftover file is harmless and never deleted.
 * - `DIR/role`: `source` or `destination`, written (atomically) when the
 *   directory is first used, and turned into `source` by a promotion. The
 *   role belongs to the data, not to the command that starts it: a directory
 *   started in the other role is refused with the command to use.
 *
 * @example
 * ```ts
 * import { DataDir } from "./mod.ts";
 * const dir = DataDir.open("data/dest", { role: "destination" });
 * console.log(dir.role?.role); // "destination"
 * dir.close();
 * ```
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";
import { fsyncDir, writeFileAtomic } from "../durable.ts";
import { type FileLock, type FileSystem, hasCode, nodeFileOps } from "../fs/file-ops.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import { dirname } from "node:path";

/** What a data directory holds: the data of a source or of a destination. */
export type DataDirRole = "source" | "destination";

/** The content of `DIR/role` (one JSON line). */
export interface RoleRecord {
  role: DataDirRole;
  /** When the directory got its first role (ISO 8601). */
  created: string;
  /** When a promotion turned this destination into a source. */
  promotedAt?: string;
  /**
   * The pair generation that promotion raised to. Written before the
   * promotion's CP, so a crash between the two still raises it: the store
   * commits it with its next CP.
   */
  pairGeneration?: number;
  /**
   * Set by `refsync dest --rejoin` on an old source's directory: this
   * destination rejoins the side promoted over it, from pair generation
   * `fromGeneration` (its own), and agreed to have its divergent history
   * replaced (`at`: when). Cleared when the first catch-up from the new
   * source commits.
   */
  rejoin?: { fromGeneration: number; at: string };
}

/** How a data directory is opened. */
export interface DataDirOptions {
  /**
   * The role the caller runs as; a directory of the other role is refused.
   * null takes any role and writes none (an offline check).
   */
  role: DataDirRole | null;
  /** Create the directory when it does not exist (default true). */
  create?: boolean;
  /** The file system (the simulator's in-memory disk). Default node:fs. */
  fs?: FileSystem;
  /** The clock of the role's timestamps. Default the system clock. */
  clock?: Clock;
  /** The pid written into the lock file. Default this process's. */
  pid?: number;
  /**
   * Opening as a destination, turn a source's directory into a rejoining
   * destination ({@link RoleRecord.rejoin}) instead of refusing it. A
   * destination's directory stays as it is.
   */
  rejoin?: boolean;
}

/** The command that starts each role, for the refusal message. */
const COMMAND: Record<DataDirRole, string> = { source: "source", destination: "dest" };

/**
 * A data directory held by this process.
 *
 * @example
 * ```ts
 * import { DataDir } from "./mod.ts";
 * const dir = DataDir.open("data/dest", { role: "destination" });
 * dir.promote(2); // the role is now "source", with pair generation 2
 * dir.close();
 * ```
 */
export class DataDir {
  readonly path: string;
  #lock: FileLock;
  #role: RoleRecord | null;
  readonly #fs: FileSystem;
  readonly #clock: Clock;

  private constructor(
    path: string,
    lock: FileLock,
    role: RoleRecord | null,
    fs: FileSystem,
    clock: Clock,
  ) {
    this.path = path;
    this.#lock = lock;
    this.#role = role;
    this.#fs = fs;
    this.#clock = clock;
  }

  /**
   * Takes the directory's lock (failing at once when another process holds
   * it), then checks its role, or records `options.role` when it has none yet.
   * Throws a `conflict` RefsyncError naming the holder's pid, or the command
   * that starts the directory's role.
   */
  static open(path: string, options: DataDirOptions): DataDir {
    const fs = options.fs ?? nodeFileOps;
    const clock = options.clock ?? systemClock;
    if (!fs.existsSync(path)) {
      if (options.create === false) {
        throw new RefsyncError("not_found", `${path}: no such data directory`);
      }
      fs.mkdirSync(path, { recursive: true });
      // The new directory's own entry must survive a crash too.
      fsyncDir(dirname(path), fs);
    }
    const lock = acquireLock(fs, path, options.pid ?? Deno.pid);
    try {
      let role = readRole(fs, path);
      if (role?.role === "source" && options.role === "destination" && options.rejoin) {
        role = {
          role: "destination",
          created: role.created,
          rejoin: {
            fromGeneration: role.pairGeneration ?? 1,
            at: new Date(clock.now()).toISOString(),
          },
        };
        writeRole(fs, path, role);
      }
      if (role !== null && options.role !== null && role.role !== options.role) {
        throw new RefsyncError("conflict", wrongRole(path, role), {
          dir: path,
          role: role.role,
        });
      }
      if (role === null && options.role !== null) {
        role = { role: options.role, created: new Date(clock.now()).toISOString() };
        writeRole(fs, path, role);
      }
      return new DataDir(path, lock, role, fs, clock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** The recorded role (null only for a directory opened with `role: null` that has none). */
  get role(): RoleRecord | null {
    return this.#role;
  }

  /** The pair generation a promotion recorded (0 when none). */
  get pairGeneration(): number {
    return this.#role?.pairGeneration ?? 0;
  }

  /**
   * Records that this destination became a source with `pairGeneration`.
   * Durable when it returns.
   */
  promote(pairGeneration: number): void {
    const role: RoleRecord = {
      role: "source",
      created: this.#role?.created ?? new Date(this.#clock.now()).toISOString(),
      promotedAt: new Date(this.#clock.now()).toISOString(),
      pairGeneration,
    };
    writeRole(this.#fs, this.path, role);
    this.#role = role;
  }

  /**
   * Clears the rejoin mark ({@link RoleRecord.rejoin}): this destination is
   * the image of its new source now. Durable when it returns.
   */
  rejoined(): void {
    if (this.#role?.rejoin === undefined) return;
    const { rejoin: _, ...role } = this.#role;
    writeRole(this.#fs, this.path, role);
    this.#role = role;
  }

  /** Releases the lock. */
  close(): void {
    this.#lock.release();
  }
}

function acquireLock(fs: FileSystem, dir: string, holder: number): FileLock {
  const path = `${dir}/lock`;
  const lock = fs.tryLockSync(path);
  if (lock === null) {
    const pid = new TextDecoder().decode(fs.readFileSync(path)).trim();
    throw new RefsyncError(
      "conflict",
      `${dir} is in use by another process (pid ${
        pid || "unknown"
      }, holder of ${path}); stop it first or use another --data directory`,
      { dir, pid: pid === "" ? null : Number(pid) },
    );
  }
  try {
    lock.write(new TextEncoder().encode(`${holder}\n`));
    return lock;
  } catch (e) {
    lock.release();
    throw e;
  }
}

function readRole(fs: FileSystem, dir: string): RoleRecord | null {
  const path = `${dir}/role`;
  let text: string;
  try {
    text = new TextDecoder().decode(fs.readFileSync(path));
  } catch (e) {
    if (hasCode(e, "ENOENT")) return null;
    throw e;
  }
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch {
    record = null;
  }
  const role = (record as Partial<RoleRecord> | null)?.role;
  if (role !== "source" && role !== "destination") {
    throw new RefsyncError(
      "conflict",
      `${path} is damaged (${JSON.stringify(text.slice(0, 100))}); ` +
        `it holds {"role":"source"} or {"role":"destination"}`,
    );
  }
  return record as RoleRecord;
}

function writeRole(fs: FileSystem, dir: string, role: RoleRecord): void {
  const bytes = new TextEncoder().encode(JSON.stringify(role) + "\n");
  writeFileAtomic(`${dir}/role`, bytes, 0o644, fs);
}

function wrongRole(dir: string, role: RoleRecord): string {
  const what = role.promotedAt
    ? `was promoted to a source on ${role.promotedAt}`
    : `holds a ${role.role}'s data`;
  const start = `start it with \`refsync ${COMMAND[role.role]} --data ${dir}\``;
  if (role.role === "destination") return `${dir} ${what}; ${start}`;
  return `${dir} ${what}; ${start}, or, to make it the destination of the side promoted ` +
    `over it (a failback: its divergent log is set aside), \`refsync dest --data ${dir} --rejoin\``;
}

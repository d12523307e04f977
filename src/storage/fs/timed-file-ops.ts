/**
 * A {@link FileSystem} that reports how long each fdatasync took: the log's
 * and the volume's durability waits, for `refsync_fsync_duration_seconds`.
 * The storage layer only calls back; who listens (the metrics) is the
 * caller's business.
 *
 * @module
 */
import type { FileSystem } from "./file-ops.ts";

/**
 * `fs` with every fdatasync (async and sync) timed; `observe` gets the
 * seconds of each one that succeeded or failed. Every other operation goes to
 * `fs` unchanged (bound to it, so implementations with private state work).
 *
 * @example
 * ```ts
 * import { nodeFileOps } from "./file-ops.ts";
 * import { timedFileOps } from "./timed-file-ops.ts";
 * const timings: number[] = [];
 * const fs = timedFileOps(nodeFileOps, (seconds) => timings.push(seconds));
 * console.assert(typeof fs.fdatasync === "function");
 * ```
 */
export function timedFileOps(fs: FileSystem, observe: (seconds: number) => void): FileSystem {
  const timed = {
    async fdatasync(fd: number): Promise<void> {
      const started = performance.now();
      try {
        await fs.fdatasync(fd);
      } finally {
        observe((performance.now() - started) / 1000);
      }
    },
    fdatasyncSync(fd: number): void {
      const started = performance.now();
      try {
        fs.fdatasyncSync(fd);
      } finally {
        observe((performance.now() - started) / 1000);
      }
    },
  };
  return new Proxy(fs, {
    get(target, prop) {
      if (prop === "fdatasync" || prop === "fdatasyncSync") return timed[prop];
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

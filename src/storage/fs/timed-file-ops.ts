/**
 * A {@link FileOps} that reports how long each fdatasync took: the log's and
 * the volume's durability waits, for `refsync_fsync_duration_seconds`. The
 * storage layer only calls back; who listens (the metrics) is the caller's
 * business.
 *
 * @module
 */
import type { FileOps } from "./file-ops.ts";

/**
 * `ops` with every fdatasync (async and sync) timed; `observe` gets the
 * seconds of each one that succeeded or failed.
 *
 * @example
 * ```ts
 * import { nodeFileOps } from "./file-ops.ts";
 * const timings: number[] = [];
 * const ops = timedFileOps(nodeFileOps, (seconds) => timings.push(seconds));
 * // ObjectStore.open(dir, { ...options, fileOps: ops })
 * ```
 */
export function timedFileOps(ops: FileOps, observe: (seconds: number) => void): FileOps {
  return {
    writeSync: (fd, buf, offset, length, position) =>
      ops.writeSync(fd, buf, offset, length, position),
    readSync: (fd, buf, offset, length, position) =>
      ops.readSync(fd, buf, offset, length, position),
    ftruncateSync: (fd, length) => ops.ftruncateSync(fd, length),
    async fdatasync(fd) {
      const started = performance.now();
      try {
        await ops.fdatasync(fd);
      } finally {
        observe((performance.now() - started) / 1000);
      }
    },
    fdatasyncSync(fd) {
      const started = performance.now();
      try {
        ops.fdatasyncSync(fd);
      } finally {
        observe((performance.now() - started) / 1000);
      }
    },
    availableBytes: (path) => ops.availableBytes(path),
  };
}

/**
 * This process's memory and CPU time, read from the OS: for
 * `/v1/admin/stats` (`process`) and `/metrics` (`process_*`).
 *
 * @module
 */

/** Resident memory and CPU time of this process. */
export interface ProcessStats {
  rssBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

/**
 * Memory and CPU of this process, read from the OS (CPU time is 0 where
 * `/proc/self/stat` is missing).
 *
 * @example
 * ```ts
 * const { rssBytes, cpuUserMs, cpuSystemMs } = processStats();
 * ```
 */
export function processStats(): ProcessStats {
  const usage = Deno.memoryUsage();
  let cpuUserMs = 0;
  let cpuSystemMs = 0;
  try {
    // /proc/self/stat fields 14 and 15: utime and stime in clock ticks (100 per second).
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    cpuUserMs = Number(fields[11]) * 10;
    cpuSystemMs = Number(fields[12]) * 10;
  } catch {
    // Not Linux: CPU time unknown.
  }
  return { rssBytes: usage.rss, cpuUserMs, cpuSystemMs };
}

/**
 * Memory and CPU time of this process, for `/v1/admin/stats` (`process`)
 * and `/metrics` (`process_*`) of both appliances. From `node:process`
 * (getrusage and the RSS), so it works wherever Deno runs, not only on Linux.
 *
 * @module
 */
import process from "node:process";

/** What `/v1/admin/stats` reports under `process`. */
export interface ProcessStats {
  /** Resident set size now, in bytes. */
  rssBytes: number;
  /** User CPU time since the process started, in ms. */
  cpuUserMs: number;
  /** System CPU time since the process started, in ms. */
  cpuSystemMs: number;
}

/**
 * This process's memory and CPU time.
 *
 * @example
 * ```ts
 * import { processStats } from "./process.ts";
 *
 * const { rssBytes, cpuUserMs } = processStats();
 * console.log(`${rssBytes >> 20} MiB, ${cpuUserMs} ms user CPU`);
 * ```
 */
export function processStats(): ProcessStats {
  const cpu = process.cpuUsage(); // µs
  return {
    rssBytes: process.memoryUsage.rss(),
    cpuUserMs: Math.round(cpu.user / 1000),
    cpuSystemMs: Math.round(cpu.system / 1000),
  };
}

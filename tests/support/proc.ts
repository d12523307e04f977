/**
 * What Linux's /proc says about a process and the machine: the one parser of
 * it, for the tests (peak RSS of an appliance) and the benchmark (CPU of each
 * side, how busy the machine was). An appliance reports its own figures from
 * `node:process` (src/metrics/process.ts); only another process's need /proc.
 *
 * @example
 * ```ts
 * import { readProcCpu, readProcMemory } from "./proc.ts";
 *
 * const { peakRss } = readProcMemory(Deno.pid);
 * const { userMs, systemMs } = readProcCpu("self");
 * console.log(peakRss, userMs + systemMs);
 * ```
 *
 * @module
 */

/** Memory of a process, from /proc/<pid>/status (bytes). */
export interface ProcMemory {
  /** VmHWM: peak resident set size. */
  peakRss: number;
  /** VmRSS: resident set size now. */
  rss: number;
}

/** CPU time of a process, from /proc/<pid>/stat (ms). */
export interface ProcCpu {
  userMs: number;
  systemMs: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ); see {@link detectClockTicks}. */
let clockTicks = 100;

/** Reads USER_HZ once from `getconf CLK_TCK` (else keeps 100, the value on every mainstream Linux). */
export async function detectClockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    if (out.success && Number.isInteger(n) && n > 0) clockTicks = n;
  } catch {
    // No getconf: keep 100.
  }
  return clockTicks;
}

/** Reads /proc/<pid>/status: VmHWM (peak RSS) and VmRSS, in bytes. */
export function readProcMemory(pid: number | "self"): ProcMemory {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { peakRss: kib("VmHWM"), rss: kib("VmRSS") };
}

/** Reads /proc/<pid>/stat: utime and stime (fields 14 and 15), in ms. */
export function readProcCpu(pid: number | "self"): ProcCpu {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces: split after its closing paren.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ms = 1000 / clockTicks;
  return { userMs: Number(fields[11]) * ms, systemMs: Number(fields[12]) * ms };
}

/**
 * Busy CPU seconds of the whole machine (all cores) since boot, from the
 * `cpu` line of /proc/stat: everything but idle and iowait. Compared with the
 * CPU of our own processes it shows how much other processes took meanwhile.
 * NaN where there is no /proc/stat.
 */
export function machineBusySeconds(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is
    // already in user; steal is time the hypervisor gave to others, not used here).
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / clockTicks;
  } catch {
    return NaN;
  }
}

/**
 * Resets the peak RSS (VmHWM) of a process to its current RSS (writes 5 to
 * /proc/<pid>/clear_refs, Linux >= 4.0). Returns false when not allowed.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

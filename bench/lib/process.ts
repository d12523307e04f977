/**
 * Appliance processes for the benchmark (and the naive mirror's): spawn
 * `deno run -A src/main.ts <role> --port 0 ...`, wait for its `{"event":"listening"}` line, read its
 * CPU time and peak RSS from /proc, stop it with SIGTERM (SIGKILL after a
 * grace period). Every spawned process is registered so that
 * {@link killAll} can end stragglers when the bench fails or is interrupted.
 *
 * @module
 */

/** This checkout: the appliances run from its src/main.ts unless told otherwise. */
import { applianceArgs } from "../../src/cli/runtime.ts";

export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname;
const TAIL = 64 * 1024;

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ), from `getconf CLK_TCK`. */
let clockTicks = 100;

/** Reads USER_HZ once (falls back to 100, the value on every mainstream Linux). */
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

/** utime + stime of a process, in seconds, from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number | "self"): { user: number; system: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Field 2 (the command) may hold spaces: split after its closing paren; utime and stime are
  // fields 14 and 15, i.e. 11 and 12 after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks };
}

/**
 * Busy CPU seconds of the whole machine (all cores) since boot, from the
 * `cpu` line of /proc/stat: everything but idle and iowait. Compared with the
 * CPU of our own processes it shows how much other processes took meanwhile.
 */
export function machineBusySeconds(): number {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is
    // already in user; steal is time the hypervisor gave to others, not used here).
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const busy = f[0] + f[1] + f[2] + f[5] + f[6];
    return busy / clockTicks;
  } catch {
    return NaN;
  }
}

/** VmHWM (peak RSS) of a process, in bytes, from /proc/<pid>/status. */
export function procPeakRss(pid: number): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
  if (!m) throw new Error(`/proc/${pid}/status has no VmHWM`);
  return Number(m[1]) * 1024;
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

const running = new Set<Appliance>();

/** A running appliance. */
export class Appliance {
  readonly role: string;
  readonly url: string;
  readonly pid: number;
  readonly #child: Deno.ChildProcess;
  readonly #drained: Promise<void>;
  readonly #stderr: { text: string };
  #status: Promise<Deno.CommandStatus>;
  #ended = false;

  constructor(
    role: string,
    url: string,
    child: Deno.ChildProcess,
    drained: Promise<void>,
    stderr: { text: string },
  ) {
    this.role = role;
    this.url = url;
    this.pid = child.pid;
    this.#child = child;
    this.#drained = drained;
    this.#stderr = stderr;
    this.#status = child.status.then((s) => {
      this.#ended = true;
      return s;
    });
    running.add(this);
  }

  /** The last 64 KiB the process wrote on stderr. */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** True once the process exited. */
  get ended(): boolean {
    return this.#ended;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when it is gone; says which signal did it. */
  async stop(graceMs = 15_000): Promise<{ graceful: boolean; code: number }> {
    this.#signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), graceMs)));
    const first = await Promise.race([this.#status, late]);
    clearTimeout(timer);
    if (first === "late") this.#signal("SIGKILL");
    const status = await this.#status;
    await this.#drained;
    running.delete(this);
    return { graceful: first !== "late", code: status.code };
  }

  /** SIGKILL and wait. */
  async kill(): Promise<void> {
    this.#signal("SIGKILL");
    await this.#status;
    await this.#drained;
    running.delete(this);
  }

  #signal(signal: Deno.Signal): void {
    if (this.#ended) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Exited meanwhile.
    }
  }
}

/** Kills every appliance still running (failure paths). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((a) => a.kill()));
}

/** Synchronous last resort (signal handlers, unload): SIGKILL every registered process. */
export function killAllNow(): void {
  for (const a of running) {
    try {
      Deno.kill(a.pid, "SIGKILL");
    } catch {
      // Gone.
    }
  }
}

/**
 * Starts `refsync <role> --port 0 --data DIR ...args` (from `repo`/src/main.ts)
 * and resolves once it printed its listening line (its stderr is in the error
 * otherwise).
 */
export function spawnAppliance(
  role: "source" | "dest",
  dataDir: string,
  args: string[],
  { repo = REPO_ROOT, timeoutMs = 30_000 }: { repo?: string; timeoutMs?: number } = {},
): Promise<Appliance> {
  const root = repo.endsWith("/") ? repo : `${repo}/`;
  return spawnListening(role, root, [
    ...applianceArgs(`${root}src/main.ts`),
    role,
    "--port",
    "0",
    "--data",
    dataDir,
    ...args,
  ], timeoutMs);
}

/**
 * Starts one side of the naive mirror (bench/naive/mirror.ts, of this
 * checkout, with the appliances' V8 flags) on 127.0.0.1 port 0.
 */
export function spawnNaive(
  role: "source" | "dest",
  dataDir: string,
  dest: string | null,
  timeoutMs = 30_000,
): Promise<Appliance> {
  return spawnListening(`naive ${role}`, REPO_ROOT, [
    ...applianceArgs(`${REPO_ROOT}bench/naive/mirror.ts`),
    "--role",
    role,
    "--data",
    dataDir,
    ...(dest ? ["--dest", dest] : []),
  ], timeoutMs);
}

/** Runs `deno ...args` in `cwd` until it prints its `{"event":"listening"}` line. */
async function spawnListening(
  role: string,
  cwd: string,
  args: string[],
  timeoutMs: number,
): Promise<Appliance> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = { text: "" };
  let onUrl!: (url: string) => void;
  const listening = new Promise<string>((r) => (onUrl = r));
  const drained = Promise.all([
    drain(child.stdout, (line) => {
      if (!line.startsWith("{")) return;
      try {
        const e = JSON.parse(line);
        if (e?.event === "listening" && typeof e.url === "string") onUrl(e.url);
      } catch {
        // Not JSON.
      }
    }),
    drain(child.stderr, undefined, stderr),
  ]).then(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
  const first = await Promise.race([listening, child.status, late]);
  clearTimeout(timer);
  if (typeof first !== "string" || first === "late") {
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited.
    }
    const status = await child.status;
    await drained;
    throw new Error(
      `${role} did not start (${
        first === "late" ? `no listening line in ${timeoutMs} ms` : `exit ${status.code}`
      }):\n` +
        stderr.text.slice(-4000),
    );
  }
  return new Appliance(role, first, child, drained, stderr);
}

async function drain(
  stream: ReadableStream<Uint8Array>,
  onLine?: (line: string) => void,
  tail?: { text: string },
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      if (tail) tail.text = (tail.text + text).slice(-TAIL);
      if (!onLine) continue;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl).trim());
        pending = pending.slice(nl + 1);
      }
      pending = pending.slice(-TAIL);
    }
  } catch {
    // The pipe closed with the process.
  }
}

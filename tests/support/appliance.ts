/**
 * Real appliance processes, for the end-to-end tests and the benchmark (the
 * one harness both use): spawn `deno run -A src/main.ts <role> --port 0 ...`
 * (of this checkout or another one), wait for its `{"event":"listening"}`
 * line, kill it (SIGKILL for crash tests, SIGTERM for a graceful stop), and
 * read its peak RSS and CPU time from /proc while it runs.
 *
 * Every handle owns the child process and the two pipe readers; `kill()` /
 * `stop()` wait for all three, so Deno's resource sanitizer stays quiet.
 * Every running process is registered, so that {@link killAll} can end
 * stragglers when a run fails or is interrupted.
 *
 * @example
 * ```ts
 * await withTempDir("refsync-src-", async (dir) => {
 *   const src = await spawnAppliance({ role: "source", dataDir: dir, args: ["--cp-interval", "100"] });
 *   try {
 *     const res = await fetch(`${src.url}/v1/objects/a`, { method: "PUT", body: "hi" });
 *     await res.body?.cancel();
 *   } finally {
 *     await src.kill();
 *   }
 * });
 * ```
 *
 * @module
 */

import { applianceArgs } from "../../src/cli/runtime.ts";
import { authHeader } from "../../src/protocol/auth/mod.ts";
import { type ProcCpu, type ProcMemory, readProcCpu, readProcMemory } from "./proc.ts";

/** The repository root (where deno.json and src/ are). */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname;
/** The CLI entry point. */
export const MAIN_TS: string = new URL("../../src/main.ts", import.meta.url).pathname;

/** How to start an appliance. */
export interface SpawnOptions {
  /**
   * Default "source". "pair" runs `pair --source-port 0 --dest-port 0` (the
   * handle is the source's; the destination's listening line is in stdout).
   */
  role?: "source" | "dest" | "pair";
  /** The `--data` directory. */
  dataDir: string;
  /** Extra flags (after `--port 0 --data DIR`). */
  args?: string[];
  /** Give up waiting for the listening line after this long (default 20 s). */
  startTimeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** The checkout whose src/main.ts runs (default: this one). */
  repo?: string;
}

/** The listening event an appliance prints on stdout. */
export interface ListeningEvent {
  event: "listening";
  role: string;
  url: string;
  port: number;
  /** The S3 face's URL, when it was started with `--s3-port`. */
  s3Url?: string;
  /** A destination's log stream port, unless `--repl-port off`. */
  logStreamPort?: number;
}

const MAX_CAPTURE = 256 * 1024;

const running = new Set<ApplianceProcess>();

/** A running appliance process. */
export class ApplianceProcess {
  readonly role: string;
  readonly url: string;
  readonly port: number;
  /** The S3 face's URL, or null without `--s3-port`. */
  readonly s3Url: string | null;
  /** A destination's log stream port, or null (a source, or `--repl-port off`). */
  readonly logStreamPort: number | null;
  readonly pid: number;
  readonly dataDir: string;
  /** The pair token its admin calls need (`--token`, REFSYNC_TOKEN, or DATA/pair-token). */
  readonly token: string;
  readonly #child: Deno.ChildProcess;
  readonly #readers: Promise<void>[];
  readonly #out: Capture;
  readonly #err: Capture;
  #status: Promise<Deno.CommandStatus>;
  #exited: Deno.CommandStatus | null = null;

  /** @internal use {@link spawnAppliance} */
  constructor(
    child: Deno.ChildProcess,
    readers: Promise<void>[],
    out: Capture,
    err: Capture,
    listening: ListeningEvent,
    dataDir: string,
    token: string,
  ) {
    this.role = listening.role;
    this.#child = child;
    this.#readers = readers;
    this.#out = out;
    this.#err = err;
    this.url = listening.url;
    this.port = listening.port;
    this.s3Url = listening.s3Url ?? null;
    this.logStreamPort = listening.logStreamPort ?? null;
    this.pid = child.pid;
    this.dataDir = dataDir;
    this.token = token;
    this.#status = child.status.then((s) => (this.#exited = s));
    running.add(this);
  }

  /** Everything the process printed on stdout so far (the last 256 KiB). */
  get stdout(): string {
    return this.#out.text;
  }

  /** Everything the process printed on stderr so far (the last 256 KiB). */
  get stderr(): string {
    return this.#err.text;
  }

  /** The exit status once the process has ended, else null. */
  get exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  /** Peak and current RSS (only while the process runs: /proc goes away with it). */
  memory(): ProcMemory {
    return readProcMemory(this.pid);
  }

  /** User and system CPU time so far (only while the process runs). */
  cpu(): ProcCpu {
    return readProcCpu(this.pid);
  }

  /** SIGKILL (a crash: no handler runs, no buffer is flushed) and wait for the end. */
  kill(): Promise<Deno.CommandStatus> {
    return this.#end("SIGKILL");
  }

  /**
   * SIGTERM (graceful stop) and wait up to `timeoutMs` for the end, then
   * SIGKILL. Resolves with the status; `graceful` says whether SIGTERM sufficed.
   */
  async stop(timeoutMs = 10_000): Promise<{ status: Deno.CommandStatus; graceful: boolean }> {
    if (this.#exited) return { status: await this.#finish(), graceful: true };
    this.#signal("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const first = await Promise.race([this.#status, timedOut]);
    clearTimeout(timer);
    if (first === "timeout") return { status: await this.#end("SIGKILL"), graceful: false };
    return { status: await this.#finish(), graceful: true };
  }

  /** Waits for the process to end by itself (bounded by `timeoutMs`, then SIGKILL). */
  async waitExit(timeoutMs: number): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const first = await Promise.race([this.#status, timedOut]);
    clearTimeout(timer);
    if (first === "timeout") return await this.#end("SIGKILL");
    return await this.#finish();
  }

  async #end(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    if (!this.#exited) this.#signal(signal);
    return await this.#finish();
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
  }

  async #finish(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await Promise.all(this.#readers);
    running.delete(this);
    return status;
  }
}

/** Kills every appliance still running (failure paths). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((a) => a.kill()));
}

/** Synchronous last resort (signal handlers): SIGKILL every registered process. */
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
 * Spawns an appliance and resolves once it printed its listening line.
 * Throws (with its stderr) when it exits first or does not listen within the timeout.
 */
export async function spawnAppliance(opts: SpawnOptions): Promise<ApplianceProcess> {
  const role = opts.role ?? "source";
  const ports = role === "pair" ? ["--source-port", "0", "--dest-port", "0"] : ["--port", "0"];
  const repo = opts.repo === undefined
    ? REPO_ROOT
    : opts.repo.endsWith("/")
    ? opts.repo
    : `${opts.repo}/`;
  const main = `${repo}src/main.ts`;
  const args = [
    ...applianceArgs(main),
    role,
    ...ports,
    "--data",
    opts.dataDir,
    ...(opts.args ?? []),
  ];
  const { child, readers, out, err, listening } = await spawnListening(role, repo, args, opts);
  const token = await pairToken(opts);
  return new ApplianceProcess(child, readers, out, err, listening, opts.dataDir, token);
}

/**
 * Starts one side of the naive mirror (bench/naive/mirror.ts, of this
 * checkout, with the appliances' V8 flags) on 127.0.0.1 port 0; it has no
 * pair token.
 */
export async function spawnNaive(
  role: "source" | "dest",
  dataDir: string,
  dest: string | null,
  startTimeoutMs?: number,
): Promise<ApplianceProcess> {
  const args = [
    ...applianceArgs(`${REPO_ROOT}bench/naive/mirror.ts`),
    "--role",
    role,
    "--data",
    dataDir,
    ...(dest ? ["--dest", dest] : []),
  ];
  const opts = { role, dataDir, startTimeoutMs };
  const { child, readers, out, err, listening } = await spawnListening(
    `naive ${role}`,
    REPO_ROOT,
    args,
    opts,
  );
  return new ApplianceProcess(child, readers, out, err, listening, dataDir, "");
}

/** Runs `deno ...args` in `cwd` until it prints its `{"event":"listening"}` line. */
async function spawnListening(
  role: string,
  cwd: string,
  args: string[],
  opts: Pick<SpawnOptions, "dataDir" | "startTimeoutMs" | "env">,
) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...opts.env },
  }).spawn();
  const out = new Capture();
  const err = new Capture();
  let onListening!: (e: ListeningEvent) => void;
  const listening = new Promise<ListeningEvent>((resolve) => (onListening = resolve));
  const readers = [
    readLines(child.stdout, out, (line) => {
      if (!line.startsWith("{")) return;
      try {
        const e = JSON.parse(line);
        // A pair is ready once its source listens (after its destination).
        if (e?.event === "listening" && (role !== "pair" || e.role === "source")) {
          onListening(e as ListeningEvent);
        }
      } catch {
        // Not a JSON line.
      }
    }),
    readLines(child.stderr, err),
  ];
  const exited = child.status;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), timeoutMs);
  });
  const first = await Promise.race([listening, exited, timeout]);
  clearTimeout(timer);
  if (first === "timeout" || !("event" in first)) {
    if (first === "timeout") {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    const status = await exited;
    await Promise.all(readers);
    const why = first === "timeout"
      ? `did not print its listening line within ${timeoutMs} ms`
      : `exited with code ${status.code}${
        status.signal ? ` (signal ${status.signal})` : ""
      } before listening`;
    throw new ApplianceStartError(`${role} in ${opts.dataDir} ${why}`, err.text, out.text, status);
  }
  return { child, readers, out, err, listening: first };
}

/**
 * The pair token an appliance uses: the last `--token` among its flags, else
 * REFSYNC_TOKEN, else the one it keeps in DATA/pair-token (DATA/dest/pair-token
 * for `pair`; written before it listens).
 */
async function pairToken(opts: SpawnOptions): Promise<string> {
  const args = opts.args ?? [];
  const at = args.lastIndexOf("--token");
  if (at >= 0 && at + 1 < args.length) return args[at + 1];
  const env = opts.env?.REFSYNC_TOKEN ?? Deno.env.get("REFSYNC_TOKEN");
  if (env) return env;
  // `pair` keeps it with its destination.
  const dir = opts.role === "pair" ? `${opts.dataDir}/dest` : opts.dataDir;
  return (await Deno.readTextFile(`${dir}/pair-token`)).trim();
}

/** The `Authorization` header of `p`'s pair token, for its admin calls. */
export function adminAuth(p: { token: string }): Record<string, string> {
  return authHeader(p.token);
}

/** Shorthand: a source with `args`. */
export function spawnSource(
  dataDir: string,
  args: string[] = [],
  extra: Omit<SpawnOptions, "dataDir" | "args" | "role"> = {},
): Promise<ApplianceProcess> {
  return spawnAppliance({ role: "source", dataDir, args, ...extra });
}

/** What a finished CLI run printed, and how it ended. */
export interface CliRun {
  code: number;
  /** Set when the run was killed (e.g. SIGKILL at its time bound). */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `refsync ARGS` (src/main.ts, as the appliances run; e.g. `promote`, or
 * an appliance expected to refuse to start) to its end, SIGKILLed after
 * `timeoutMs`, which shows as `signal`. The child gets this process's
 * environment without its REFSYNC_* variables, plus `env`.
 */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<CliRun> {
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !k.startsWith("REFSYNC_")),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [...applianceArgs(MAIN_TS), ...args],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: { ...env, NO_COLOR: "1", ...opts.env },
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, opts.timeoutMs ?? 20_000);
  try {
    const out = await child.output();
    const text = new TextDecoder();
    return {
      code: out.code,
      signal: out.signal,
      stdout: text.decode(out.stdout),
      stderr: text.decode(out.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** An appliance that did not come up; carries what it printed. */
export class ApplianceStartError extends Error {
  readonly stderr: string;
  readonly stdout: string;
  readonly status: Deno.CommandStatus;

  constructor(message: string, stderr: string, stdout: string, status: Deno.CommandStatus) {
    super(
      `${message}\n--- stderr ---\n${stderr.slice(-4000)}\n--- stdout ---\n${stdout.slice(-2000)}`,
    );
    this.name = "ApplianceStartError";
    this.stderr = stderr;
    this.stdout = stdout;
    this.status = status;
  }
}

/** Creates a temp directory, runs `fn` with it, removes it afterwards (even on failure). */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Copies a directory tree (a data dir snapshot). */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    const src = `${from}/${e.name}`;
    const dst = `${to}/${e.name}`;
    if (e.isDirectory) await copyDir(src, dst);
    else if (e.isFile) await Deno.copyFile(src, dst);
  }
}

/** Keeps the tail of a text stream. */
class Capture {
  #parts: string[] = [];
  #size = 0;

  add(text: string): void {
    this.#parts.push(text);
    this.#size += text.length;
    while (this.#size > MAX_CAPTURE && this.#parts.length > 1) {
      this.#size -= this.#parts.shift()!.length;
    }
  }

  get text(): string {
    return this.#parts.join("");
  }
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  capture: Capture,
  onLine?: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      capture.add(text);
      if (!onLine) continue;
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        onLine(pending.slice(0, nl).trim());
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_CAPTURE) pending = pending.slice(-MAX_CAPTURE);
    }
  } catch {
    // The pipe broke with the process: what was read is kept.
  }
  if (onLine && pending.trim() !== "") onLine(pending.trim());
}

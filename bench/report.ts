/**
 * `deno task bench`: the refsync benchmark report.
 *
 * For each workload (aligned, unaligned, duplicate, small, mixed, edited, realfiles)
 * and mode (`refs`, `full`, `local`, `naive`) it starts fresh appliance (or
 * naive mirror) processes on 127.0.0.1, drives
 * them over HTTP, and measures client bytes, bytes on the wire, throughput,
 * latency, CPU per GiB, peak RSS and CP durations. Writes
 * bench/results/latest.json and bench/results/latest.md. `--help` lists the
 * options; `--quick` finishes within 2 minutes.
 *
 * @module
 */
import { BenchUsageError, type Mode, parseBenchArgs, USAGE } from "./lib/args.ts";
import { fileSystemOf } from "./lib/fs.ts";
import { renderMarkdown, type ReportContext } from "./lib/markdown.ts";
import { killAll, killAllNow, REPO_ROOT } from "../tests/support/appliance.ts";
import { detectClockTicks } from "../tests/support/proc.ts";
import { renderResync, type ResyncScaling, runResyncScaling } from "./lib/resync.ts";
import { runOne } from "./lib/run.ts";
import { compareRuns, evaluateGoals, type RunResult } from "./lib/stats.ts";
import { WORKLOAD_NAMES, WORKLOADS } from "./workloads/mod.ts";

function log(line: string): void {
  console.error(`[bench] ${line}`);
}

async function git(cwd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args,
      cwd,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
  } catch {
    return "";
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    return m ? m[1].trim() : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

async function main(args: string[]): Promise<number> {
  const opts = parseBenchArgs(args, WORKLOAD_NAMES);
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const started = performance.now();
  await detectClockTicks();
  let createdDataDir = false;
  if (opts.dataDir) {
    createdDataDir = !(await Deno.stat(opts.dataDir).then(() => true, () => false));
    await Deno.mkdir(opts.dataDir, { recursive: true });
  }
  const base = await Deno.makeTempDir({ dir: opts.dataDir ?? undefined, prefix: "refsync-bench-" });
  const fileSystem = fileSystemOf(base);
  const applianceArgs = [
    ...(opts.cpInterval ? ["--cp-interval", opts.cpInterval] : []),
    ...(opts.cpDirtyBytes ? ["--cp-dirty-bytes", opts.cpDirtyBytes] : []),
  ];
  const workloadOptions = {
    seed: opts.seed,
    quick: opts.quick,
    corpus: opts.corpus ?? undefined,
    corpusBytes: opts.corpusBytes ?? undefined,
  };
  log(`data under ${base} (${fileSystem.type} on ${fileSystem.mountPoint})`);

  // Ctrl-C or kill: end the appliances and remove the data before leaving.
  const removeData = () => {
    if (opts.keepData) return;
    try {
      Deno.removeSync(base, { recursive: true });
      if (createdDataDir) Deno.removeSync(opts.dataDir!); // only when empty
    } catch {
      // Already gone, or not empty.
    }
  };
  const onInt = () => onSignal(130);
  const onTerm = () => onSignal(143);
  const onSignal = (code: number) => {
    log("interrupted: killing the appliances and removing the run data");
    killAllNow();
    removeData();
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);

  const runs: RunResult[] = [];
  const skipped: ReportContext["skipped"] = [];
  const failures: ReportContext["failures"] = [];
  const notes: ReportContext["notes"] = [];
  let resync: ResyncScaling | null = null;
  try {
    for (const name of opts.workloads) {
      const reason = WORKLOADS[name](workloadOptions).skip;
      if (reason) {
        skipped.push({ workload: name, reason });
        log(`${name}: skipped: ${reason}`);
        continue;
      }
      for (const mode of opts.modes) {
        const workload = WORKLOADS[name](workloadOptions);
        const concurrency = opts.concurrency ?? workload.concurrency;
        const dir = `${base}/${name}-${mode}`;
        await Deno.mkdir(dir);
        log(
          `${name} / ${mode}: concurrency ${concurrency}, ` +
            `${workload.finite ? "all its ops" : `up to ${opts.seconds} s`} or ` +
            `${(opts.bytes / 2 ** 20).toFixed(0)} MiB`,
        );
        try {
          const { result, notes: runNotes } = await runOne({
            workload,
            mode: mode as Mode,
            concurrency,
            seconds: opts.seconds,
            bytes: opts.bytes,
            dir,
            applianceArgs,
            repo: opts.repo ?? REPO_ROOT,
            log,
          });
          runs.push(result);
          for (const note of runNotes) {
            notes.push({ workload: name, mode, note });
            log(`${name} / ${mode}: ${note}`);
          }
          log(
            `${name} / ${mode}: ${(result.clientBytes / 2 ** 20).toFixed(0)} MiB in ` +
              `${result.loadSeconds} s = ${result.throughputMiBs} MiB/s, wire/client ` +
              `${result.ratios.wireToClient}, cpSync/client ${result.ratios.cpSyncToClient}, ` +
              `p99 ${result.latencyMs.p99} ms`,
          );
        } catch (e) {
          const error = e instanceof Error ? e.message : String(e);
          failures.push({ workload: name, mode: mode as Mode, error });
          log(`${name} / ${mode} FAILED: ${error}`);
          await killAll();
        } finally {
          if (!opts.keepData) await Deno.remove(dir, { recursive: true }).catch(() => {});
        }
      }
    }
    if (opts.resync) {
      log("resync: the same changes on a volume and on one 16x larger");
      try {
        resync = await runResyncScaling(base, opts.quick, log, opts.repo ?? undefined);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        failures.push({ workload: "resync", mode: "refs", error });
        log(`resync FAILED: ${error}`);
      }
    }
  } finally {
    await killAll();
    removeData();
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }

  const compared = compareRuns(runs);
  const goals = evaluateGoals(compared, opts.workloads);
  const repo = opts.repo ?? REPO_ROOT;
  const commit = (await git(repo, ["rev-parse", "--short", "HEAD"])) || "unknown";
  const dirty = (await git(repo, ["status", "--porcelain", "--untracked-files=no"])) !== "";
  const generatedAt = new Date().toISOString();
  const ctx: ReportContext = {
    generatedAt,
    quick: opts.quick,
    commit: commit + (dirty ? " (with uncommitted changes)" : "") +
      (opts.repo ? ` of ${opts.repo}` : ""),
    deno: Deno.version.deno,
    cpus: `${navigator.hardwareConcurrency} CPUs (${cpuModel()})`,
    cores: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    fileSystem,
    budget: { seconds: opts.seconds, bytes: opts.bytes },
    applianceArgs,
    seed: opts.seed,
    totalSeconds: (performance.now() - started) / 1000,
    workloads: opts.workloads.map((n) => ({
      name: n,
      summary: WORKLOADS[n](workloadOptions).summary,
    })),
    skipped,
    failures,
    notes,
  };
  const json = {
    generatedAt,
    quick: opts.quick,
    environment: {
      commit: ctx.commit,
      deno: ctx.deno,
      cpus: ctx.cpus,
      kernel: ctx.kernel,
      fileSystem,
    },
    options: {
      seconds: opts.seconds,
      bytes: opts.bytes,
      concurrency: opts.concurrency,
      workloads: opts.workloads,
      modes: opts.modes,
      seed: opts.seed,
      applianceArgs,
      corpus: opts.corpus,
      corpusBytes: opts.corpusBytes,
    },
    totalSeconds: Math.round(ctx.totalSeconds * 10) / 10,
    goals,
    skipped,
    failures,
    notes,
    runs: compared,
    resync,
  };
  const markdown = renderMarkdown(compared, goals, ctx) +
    (resync ? "\n" + renderResync(resync).join("\n") : "");
  await Deno.mkdir(opts.outDir, { recursive: true });
  await writeAtomic(`${opts.outDir}/latest.json`, JSON.stringify(json, null, 2) + "\n");
  await writeAtomic(`${opts.outDir}/latest.md`, markdown);
  console.log(markdown);
  log(`wrote ${opts.outDir}/latest.json and latest.md in ${ctx.totalSeconds.toFixed(0)} s`);
  const mirrorsDiffer = compared.some((r) => r.digestMatch === false);
  return failures.length || mirrorsDiffer || resync?.small.digestMatch === false ||
      resync?.large.digestMatch === false
    ? 1
    : 0;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main(Deno.args);
  } catch (e) {
    killAllNow();
    if (e instanceof BenchUsageError) {
      console.error(`bench: ${e.message}\n\n${USAGE}`);
      Deno.exitCode = 2;
    } else {
      console.error("bench:", e instanceof Error ? e.stack ?? e.message : e);
      Deno.exitCode = 1;
    }
  }
}

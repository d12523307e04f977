/**
 * latest.md: the goals with ✓/✗, then one table per workload: a row per
 * figure, a column per mode, and next to each value its ratio to the same
 * figure in `full`, `local` and `naive` mode.
 *
 * @module
 */
import { type Mode, MODES } from "./args.ts";
import { type GoalResult, ratio, type RunResult } from "./stats.ts";

/** What the report says about where and how it ran. */
export interface ReportContext {
  generatedAt: string;
  quick: boolean;
  commit: string;
  deno: string;
  cpus: string;
  /** Cores the machine has (for the share of the CPUs other processes took). */
  cores: number;
  kernel: string;
  fileSystem: { type: string; device: string; mountPoint: string; path: string };
  budget: { seconds: number; bytes: number };
  applianceArgs: string[];
  seed: number;
  totalSeconds: number;
  workloads: { name: string; summary: string }[];
  failures: { workload: string; mode: Mode; error: string }[];
  /** Workloads that could not run here, and why. */
  skipped: { workload: string; reason: string }[];
  notes: { workload: string; mode: Mode; note: string }[];
}

/** One figure of the table. */
export interface Figure {
  label: string;
  get: (r: RunResult) => number | null;
  format: (x: number) => string;
  /** Show ratios against full / local / naive next to it. */
  compare: boolean;
}

/** Formats a byte count: B, KiB, MiB or GiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

/** Formats a ratio to 2 significant-ish digits: 0.0012×, 0.52×, 1.03×, 12.4×. */
export function formatRatio(x: number): string {
  if (x === 0) return "0×";
  const a = Math.abs(x);
  const digits = a >= 10 ? 1 : a >= 0.1 ? 2 : Math.min(6, 1 - Math.floor(Math.log10(a)));
  return `${x.toFixed(digits)}×`;
}

/** Above this share of the machine taken by other processes, timings are flagged. */
export const BUSY = 0.2;

/** CPU seconds other processes used during the run ÷ what the machine's cores offered. */
export function otherShare(r: RunResult, cores = navigator.hardwareConcurrency): number | null {
  if (r.cpuSeconds.other === null || r.totalSeconds <= 0) return null;
  return r.cpuSeconds.other / (r.totalSeconds * cores);
}

const num = (d: number) => (x: number) => x.toFixed(d);
const int = (x: number) => Math.round(x).toLocaleString("en-US");
const percent = (x: number) => `${(x * 100).toFixed(x < 0.1 ? 3 : 1)}%`;

/** The rows of a workload table. */
export const FIGURES: Figure[] = [
  { label: "client bytes", get: (r) => r.clientBytes, format: formatBytes, compare: false },
  { label: "PUTs (errors)", get: (r) => r.ops, format: int, compare: false },
  { label: "wire: log bytes", get: (r) => r.wire.logBytes, format: formatBytes, compare: false },
  {
    label: "wire: CP sync bytes",
    get: (r) => r.wire.cpSyncBytes,
    format: formatBytes,
    compare: false,
  },
  { label: "CP blocks: DATA", get: (r) => r.wire.cpBlocks.data, format: int, compare: false },
  { label: "CP blocks: LOG_REF", get: (r) => r.wire.cpBlocks.logRef, format: int, compare: false },
  { label: "CP blocks: PATCH", get: (r) => r.wire.cpBlocks.patch, format: int, compare: false },
  { label: "CP blocks: COPY", get: (r) => r.wire.cpBlocks.copy, format: int, compare: false },
  { label: "CP blocks: ZERO", get: (r) => r.wire.cpBlocks.zero, format: int, compare: false },
  { label: "CP blocks: DIFF", get: (r) => r.wire.cpBlocks.diff, format: int, compare: false },
  { label: "wire / client", get: (r) => r.ratios.wireToClient, format: num(4), compare: true },
  {
    label: "savings: compression share",
    get: (r) => r.savings.compressionShare,
    format: percent,
    compare: false,
  },
  {
    label: "savings: dedup share",
    get: (r) => r.savings.dedupShare,
    format: percent,
    compare: false,
  },
  { label: "link zstd level (at the end)", get: (r) => r.linkLevel, format: int, compare: false },
  {
    label: "CP sync / client",
    get: (r) => r.ratios.cpSyncToClient,
    format: percent,
    compare: true,
  },
  {
    label: "throughput MiB/s (acked)",
    get: (r) => r.throughputMiBs,
    format: num(1),
    compare: true,
  },
  {
    label: "throughput MiB/s (to final CP)",
    get: (r) => r.committedThroughputMiBs,
    format: num(1),
    compare: true,
  },
  { label: "PUT latency p50 ms", get: (r) => r.latencyMs.p50, format: num(2), compare: true },
  { label: "PUT latency p99 ms", get: (r) => r.latencyMs.p99, format: num(2), compare: true },
  {
    label: "CPU s/GiB source",
    get: (r) => r.cpuSecondsPerGiB.source,
    format: num(2),
    compare: true,
  },
  {
    label: "CPU s/GiB destination",
    get: (r) => r.cpuSecondsPerGiB.destination,
    format: num(2),
    compare: true,
  },
  { label: "CPU s/GiB both", get: (r) => r.cpuSecondsPerGiB.total, format: num(2), compare: true },
  {
    label: "CPU s/GiB bench client",
    get: (r) => (r.clientBytes ? r.cpuSeconds.bench / (r.clientBytes / 2 ** 30) : null),
    format: num(2),
    compare: false,
  },
  {
    label: "CPU s of other processes",
    get: (r) => r.cpuSeconds.other,
    format: num(2),
    compare: false,
  },
  {
    label: "other processes' share of the CPUs",
    get: otherShare,
    format: (x) => `${(x * 100).toFixed(0)}%${x > BUSY ? " ⚠" : ""}`,
    compare: false,
  },
  { label: "peak RSS source MiB", get: (r) => r.peakRssMiB.source, format: num(1), compare: true },
  {
    label: "peak RSS destination MiB",
    get: (r) => r.peakRssMiB.destination,
    format: num(1),
    compare: true,
  },
  { label: "CP ms p50", get: (r) => r.cpMs.p50, format: num(1), compare: true },
  { label: "CP ms p99", get: (r) => r.cpMs.p99, format: num(1), compare: true },
  { label: "CPs committed (sampled)", get: (r) => r.cpCommitted, format: int, compare: false },
  { label: "final CP ms", get: (r) => r.finalCpMs, format: num(1), compare: false },
  { label: "load seconds", get: (r) => r.loadSeconds, format: num(2), compare: false },
];

/**
 * One cell: the value and, when the figure compares, its ratio to the same
 * figure of the `full`, `local` and `naive` runs (not to itself).
 *
 * @example
 * ```ts
 * cell(FIGURES[12], refsRun, fullRun, localRun); // "45.1 (1.50× full · 0.90× local)"
 * ```
 */
export function cell(
  f: Figure,
  run: RunResult | undefined,
  full: RunResult | undefined,
  local: RunResult | undefined,
  naive?: RunResult,
): string {
  if (!run) return "";
  const v = f.get(run);
  if (v === null) return "—";
  let text = f.format(v);
  if (f.label === "PUTs (errors)") text += ` (${run.errors})`;
  if (!f.compare) return text;
  const parts: string[] = [];
  for (const [name, other] of [["full", full], ["local", local], ["naive", naive]] as const) {
    if (!other || other === run) continue;
    const r = ratio(v, f.get(other));
    if (r !== null) parts.push(`${formatRatio(r)} ${name}`);
  }
  return parts.length ? `${text} (${parts.join(" · ")})` : text;
}

function escapeCell(s: string): string {
  return s.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  return [line(header), `| ${header.map(() => "---").join(" | ")} |`, ...rows.map(line)].join("\n");
}

function goalMark(met: boolean | null): string {
  return met === null ? "n/a" : met ? "✓" : "✗";
}

/** The whole report. */
export function renderMarkdown(runs: RunResult[], goals: GoalResult[], ctx: ReportContext): string {
  const out: string[] = [];
  const modes = MODES.filter((m) => runs.some((r) => r.mode === m));
  out.push(`# refsync benchmark${ctx.quick ? " (quick)" : ""}`, "");
  out.push(
    `Generated ${ctx.generatedAt} in ${ctx.totalSeconds.toFixed(0)} s · commit ${ctx.commit} · ` +
      `Deno ${ctx.deno} · ${ctx.cpus} · Linux ${ctx.kernel}`,
    "",
    `Data on **${ctx.fileSystem.type}** (${ctx.fileSystem.device} on ${ctx.fileSystem.mountPoint}, ` +
      `runs under ${ctx.fileSystem.path}). On tmpfs instead: ` +
      "`deno task bench --data-dir /dev/shm/refsync-bench`.",
    "",
    `Each run: fresh source and destination processes on 127.0.0.1, load until ` +
      `${(ctx.budget.bytes / 2 ** 20).toFixed(0)} MiB or ${ctx.budget.seconds} s, then ` +
      "`POST /v1/admin/cp` (committed on both sides). Seed " + `${ctx.seed}; appliance flags: ` +
      (ctx.applianceArgs.length ? `\`${ctx.applianceArgs.join(" ")}\`` : "defaults") + ".",
    "",
    "Modes: `refs` (default CP sync), `full` (prior art: every CP block as DATA), `local` " +
      "(source alone), `naive` (bench/naive/mirror.ts: each PUT body appended and fdatasync'ed " +
      "on both sides, forwarded with one `fetch` per PUT, acknowledged when both are durable; " +
      "no CPs, so no CP figures and no digest). Wire bytes are counted by the source where it sends them (request " +
      "bodies; HTTP headers and chunk framing not included). CPU (utime+stime) and peak RSS " +
      "(VmHWM) are read from /proc of each process; CPU covers the load and the final CP. " +
      "Figures in parentheses: this value ÷ the same figure in `full` / `local` / `naive` " +
      "mode. Savings shares: of client − wire bytes, the part compression and the part " +
      "references to content the destination holds saved (— until the appliance counts them). " +
      "Source, destination and the bench client share the machine's cores.",
    "",
  );
  out.push("## Goals", "");
  const share = (r: RunResult) => otherShare(r, ctx.cores) ?? 0;
  const busy = runs.filter((r) => share(r) > BUSY);
  if (busy.length) {
    const worst = Math.max(...busy.map(share));
    out.push(
      `⚠ Other processes used more than ${BUSY * 100}% of the CPUs during ${busy.length} of ` +
        `${runs.length} runs (up to ${(worst * 100).toFixed(0)}%): throughput, latency and CP ` +
        "durations of those runs are skewed (byte counts and ratios of bytes are not).",
      "",
    );
  }
  out.push(table(
    ["workload", "goal", "measured", ""],
    goals.map((g) => [g.workload, g.goal, g.measured, goalMark(g.met)]),
  ));
  out.push("");
  if (ctx.skipped.length) {
    out.push("## Skipped workloads", "");
    for (const s of ctx.skipped) out.push(`- ${s.workload}: ${escapeCell(s.reason)}`);
    out.push("");
  }
  if (ctx.failures.length) {
    out.push("## Failed runs", "");
    for (const f of ctx.failures) out.push(`- ${f.workload} / ${f.mode}: ${escapeCell(f.error)}`);
    out.push("");
  }
  for (const w of ctx.workloads) {
    const of = (m: Mode) => runs.find((r) => r.workload === w.name && r.mode === m);
    if (!modes.some((m) => of(m))) continue;
    out.push(`## ${w.name}`, "", `${w.summary}.`, "");
    const any = modes.map(of).find((r) => r)!;
    out.push(
      `Concurrency ${any.concurrency}.` +
        (any.setup.bytes
          ? ` Setup (not measured): ${formatBytes(any.setup.bytes)} in ${
            any.setup.seconds.toFixed(1)
          } s.`
          : ""),
      "",
    );
    const rows = FIGURES.map((
      f,
    ) => [f.label, ...modes.map((m) => cell(f, of(m), of("full"), of("local"), of("naive")))]);
    rows.push([
      "mirror digest after final CP",
      ...modes.map((m) => {
        const r = of(m);
        return !r ? "" : r.digestMatch === null ? "—" : r.digestMatch ? "equal ✓" : "DIFFERS ✗";
      }),
    ]);
    out.push(table(["figure", ...modes], rows), "");
    const notes = ctx.notes.filter((n) => n.workload === w.name);
    if (notes.length) {
      for (const n of notes) out.push(`- ${n.mode}: ${escapeCell(n.note)}`);
      out.push("");
    }
  }
  return out.join("\n");
}

import assert from "node:assert/strict";
import {
  cell,
  FIGURES,
  formatBytes,
  formatRatio,
  renderMarkdown,
  type ReportContext,
  table,
} from "../../bench/lib/markdown.ts";
import type { GoalResult, RunResult } from "../../bench/lib/stats.ts";
import type { Mode } from "../../bench/lib/args.ts";

function run(
  mode: Mode,
  throughput: number,
  p99: number | null,
  workload = "aligned",
  other = 0,
): RunResult {
  return {
    workload,
    mode,
    concurrency: 8,
    clientBytes: 3 * 2 ** 30,
    clientBytesSource: 3 * 2 ** 30,
    ops: 1234,
    errors: 2,
    wire: {
      logBytes: 0,
      cpSyncBytes: 0,
      totalBytes: 0,
      cpBlocks: { data: 1, logRef: 2, patch: 3, copy: 4, zero: 5, diff: 6 },
    },
    ratios: { wireToClient: mode === "local" ? null : 1.01, cpSyncToClient: null },
    savings: { compressionShare: null, dedupShare: null },
    linkLevel: null,
    throughputMiBs: throughput,
    committedThroughputMiBs: throughput,
    latencyMs: { p50: 1, p99, max: p99 },
    cpuSeconds: { source: 1, destination: null, bench: 1, other },
    cpuSecondsPerGiB: { source: 1, destination: null, total: 1 },
    peakRssMiB: { source: 100, destination: null },
    peakRssIncludesSetup: false,
    cpMs: { p50: 1, p99: 2, max: 2, samples: 3 },
    cpCommitted: 3,
    finalCpMs: 5,
    loadSeconds: 10,
    totalSeconds: 11,
    setup: { bytes: 0, seconds: 0 },
    digestMatch: mode === "local" || mode === "naive" ? null : true,
    vs: { full: null, local: null, naive: null },
  };
}

function context(over: Partial<ReportContext>): ReportContext {
  return {
    generatedAt: "2025-01-01T00:00:00.000Z",
    quick: true,
    commit: "abc1234",
    deno: "2.9.6",
    cpus: "2 CPUs",
    cores: 2,
    kernel: "6.1",
    fileSystem: { type: "tmpfs", device: "tmpfs", mountPoint: "/dev/shm", path: "/dev/shm/x" },
    budget: { seconds: 5, bytes: 512 * 2 ** 20 },
    applianceArgs: [],
    seed: 1,
    totalSeconds: 90,
    workloads: [],
    skipped: [],
    failures: [],
    notes: [],
    ...over,
  };
}

const fig = (label: string) => FIGURES.find((f) => f.label === label)!;

Deno.test("formatBytes and formatRatio", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 2 ** 20), "5.0 MiB");
  assert.equal(formatBytes(3 * 2 ** 30), "3.00 GiB");
  assert.equal(formatRatio(0.5), "0.50×");
  assert.equal(formatRatio(1.034), "1.03×");
  assert.equal(formatRatio(12.34), "12.3×");
  // Small ratios keep two significant digits instead of rounding to 0.00.
  assert.equal(formatRatio(0.0068), "0.0068×");
  assert.equal(formatRatio(0.00123), "0.0012×");
  assert.equal(formatRatio(0), "0×");
});

Deno.test("cell: value with its ratio to full and local, never to itself", () => {
  const refs = run("refs", 80, 40);
  const full = run("full", 40, 100);
  const local = run("local", 100, 20);
  const tp = fig("throughput MiB/s (acked)");
  assert.equal(cell(tp, refs, full, local), "80.0 (2.00× full · 0.80× local)");
  assert.equal(cell(tp, full, full, local), "40.0 (0.40× local)");
  assert.equal(cell(tp, local, full, local), "100.0 (2.50× full)");
  assert.equal(cell(tp, refs, undefined, local), "80.0 (0.80× local)");
  assert.equal(cell(tp, undefined, full, local), "");
  // Unknown value: a dash; unknown other value: no ratio.
  const p99 = fig("PUT latency p99 ms");
  assert.equal(cell(p99, run("refs", 1, null), full, local), "—");
  assert.equal(cell(p99, refs, run("full", 1, null), local), "40.00 (2.00× local)");
  // Figures that do not compare show only the value.
  assert.equal(cell(fig("client bytes"), refs, full, local), "3.00 GiB");
  assert.equal(cell(fig("PUTs (errors)"), refs, full, local), "1,234 (2)");
  assert.equal(cell(fig("wire / client"), local, full, local), "—");
});

Deno.test("table: header, separator, escaped cells", () => {
  assert.equal(
    table(["a", "b"], [["1", "x|y"], ["2", "line\nbreak"]]),
    "| a | b |\n| --- | --- |\n| 1 | x\\|y |\n| 2 | line break |",
  );
});

Deno.test("renderMarkdown: goals with marks, one table per workload, modes as columns", () => {
  const runs = [run("refs", 80, 40), run("full", 40, 100), run("local", 100, 20)];
  const goals: GoalResult[] = [
    { workload: "aligned", goal: "refs throughput ≥ 0.8× local", measured: "0.80×", met: true },
    {
      workload: "aligned",
      goal: "refs source CPU/GiB ≤ 1.5× local",
      measured: "1.60×",
      met: false,
    },
    { workload: "aligned", goal: "refs wire/client ≤ 1.03", measured: "n/a", met: null },
  ];
  const ctx = context({
    workloads: [{ name: "aligned", summary: "aligned PUTs" }, {
      name: "small",
      summary: "none run",
    }],
    failures: [{ workload: "small", mode: "refs", error: "boom" }],
    notes: [{ workload: "aligned", mode: "full", note: "a note" }],
  });

  const md = renderMarkdown(runs, goals, ctx);
  assert.match(md, /^# refsync benchmark \(quick\)/);
  assert.match(md, /Data on \*\*tmpfs\*\*/);
  assert.match(md, /\| aligned \| refs throughput ≥ 0\.8× local \| 0\.80× \| ✓ \|/);
  assert.match(md, /\| aligned \| refs source CPU\/GiB ≤ 1\.5× local \| 1\.60× \| ✗ \|/);
  assert.match(md, /\| aligned \| refs wire\/client ≤ 1\.03 \| n\/a \| n\/a \|/);
  assert.match(md, /\| figure \| refs \| full \| local \|/);
  assert.match(
    md,
    /\| throughput MiB\/s \(acked\) \| 80\.0 \(2\.00× full · 0\.80× local\) \| 40\.0 \(0\.40× local\) \| 100\.0 \(2\.50× full\) \|/,
  );
  assert.match(md, /\| mirror digest after final CP \| equal ✓ \| equal ✓ \| — \|/);
  assert.match(md, /- small \/ refs: boom/);
  assert.match(md, /- full: a note/);
  assert.ok(!md.includes("## small"), "a workload without runs gets no table");
  assert.ok(!md.includes("⚠"), "a quiet machine gets no warning");
  // 5 CPU s of other processes in an 11 s run on 2 cores: 23% > 20%.
  const busy = renderMarkdown([run("refs", 80, 40, "aligned", 5), runs[1], runs[2]], goals, ctx);
  assert.match(
    busy,
    /⚠ Other processes used more than 20% of the CPUs during 1 of 3 runs \(up to 23%\)/,
  );
  assert.match(busy, /\| other processes' share of the CPUs \| 23% ⚠ \| 0% \| 0% \|/);
  // Every table row has as many cells as its header.
  for (const line of md.split("\n").filter((l) => l.startsWith("| figure"))) {
    assert.equal(line.split(" | ").length, 4);
  }
});

Deno.test("renderMarkdown: a naive column, ratios to it, savings as dashes, skipped workloads", () => {
  const runs = [run("refs", 80, 40), run("naive", 160, 20)];
  const ctx = context({
    budget: { seconds: 3, bytes: 512 * 2 ** 20 },
    totalSeconds: 30,
    workloads: [{ name: "aligned", summary: "aligned PUTs" }, {
      name: "realfiles",
      summary: "0 files",
    }],
    skipped: [{ workload: "realfiles", reason: "no file in the corpus (/nowhere)" }],
  });

  const md = renderMarkdown(runs, [], ctx);
  assert.match(md, /\| figure \| refs \| naive \|/);
  assert.match(md, /\| throughput MiB\/s \(acked\) \| 80\.0 \(0\.50× naive\) \| 160\.0 \|/);
  assert.match(md, /\| savings: compression share \| — \| — \|/);
  assert.match(md, /\| savings: dedup share \| — \| — \|/);
  assert.match(md, /\| mirror digest after final CP \| equal ✓ \| — \|/);
  assert.match(md, /## Skipped workloads\n\n- realfiles: no file in the corpus \(\/nowhere\)/);
  assert.ok(!md.includes("## realfiles"));
  // A share, once the appliance counts it, is a percentage.
  const counted = { ...runs[0], savings: { compressionShare: 0.4, dedupShare: 0.6 } };
  assert.equal(cell(fig("savings: dedup share"), counted, undefined, undefined), "60.0%");
  assert.equal(
    cell(fig("throughput MiB/s (acked)"), runs[0], undefined, undefined, runs[1]),
    "80.0 (0.50× naive)",
  );
});

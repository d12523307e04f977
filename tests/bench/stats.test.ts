import assert from "node:assert/strict";
import {
  compareRuns,
  evaluateGoals,
  percentile,
  ratio,
  type RunMeasurement,
  runResult,
  type Snapshot,
} from "../../bench/lib/stats.ts";
import type { Mode } from "../../bench/lib/args.ts";

Deno.test("percentile: nearest rank on unsorted input", () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([7], 99), 7);
  assert.equal(percentile([5, 1, 4, 2, 3], 50), 3);
  assert.equal(percentile([5, 1, 4, 2, 3], 0), 1);
  assert.equal(percentile([5, 1, 4, 2, 3], 100), 5);
  // 100 values 1..100: p99 is the 99th, p50 the 50th (not an interpolation).
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 50), 50);
  // 1000 values: p99 = 990th smallest; numeric (not lexicographic) order.
  const values = Float64Array.from({ length: 1000 }, (_, i) => (i * 7919) % 1000 + 1);
  assert.equal(percentile(values, 99), 990);
  assert.equal(percentile([10, 9, 100, 2], 50), 9);
  assert.throws(() => percentile([1], 101), RangeError);
});

Deno.test("ratio: null when unknown or dividing by zero", () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(0, 2), 0);
  assert.equal(ratio(3, 0), null);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(2, null), null);
  assert.equal(ratio(NaN, 2), null);
});

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function snap(
  at: number,
  client: number,
  log: number,
  cp: number,
  data: number,
  cpu: [number, number | null, number],
  machineBusy = 0,
): Snapshot {
  return {
    at,
    clientBytes: client,
    wire: {
      logBytes: log,
      cpSyncBytes: cp,
      cpBlocks: { data, logRef: 10 * data, patch: 0, copy: 0, zero: 0, diff: 1 },
    },
    cpu: { source: cpu[0], destination: cpu[1], bench: cpu[2] },
    machineBusy,
  };
}

function measurement(mode: Mode, over: Partial<RunMeasurement> = {}): RunMeasurement {
  const local = mode === "local";
  return {
    workload: "aligned",
    mode,
    concurrency: 8,
    // Setup before: 1 GiB already written; the run adds 2 GiB in 10 s (+2 s final CP).
    before: snap(1000, GiB, GiB, 5 * MiB, 3, [4, local ? null : 2, 1], 100),
    loadEnd: 11_000,
    after: snap(
      13_000,
      3 * GiB,
      local ? GiB : 3 * GiB + MiB,
      local ? 5 * MiB : 5 * MiB + 20 * MiB,
      13,
      [10, local ? null : 5, 2],
      // The machine was busy 12.5 s: ours took 6 + 3 + 1 (refs) or 6 + 1 (local).
      112.5,
    ),
    clientBytes: 2 * GiB,
    ops: 100,
    errors: 0,
    latenciesMs: Array.from({ length: 100 }, (_, i) => i + 1),
    cpDurationsMs: [10, 30, 20],
    cpCommitted: 3,
    finalCpMs: 2000,
    peakRss: { source: 300 * MiB, destination: local ? null : 200 * MiB },
    peakRssReset: true,
    digestMatch: local ? null : true,
    setup: { bytes: GiB, seconds: 5 },
    ...over,
  };
}

Deno.test("runResult: figures are deltas between the two snapshots", () => {
  const r = runResult(measurement("refs"));
  assert.equal(r.clientBytes, 2 * GiB);
  assert.equal(r.clientBytesSource, 2 * GiB);
  assert.equal(r.wire.logBytes, 2 * GiB + MiB);
  assert.equal(r.wire.cpSyncBytes, 20 * MiB);
  assert.equal(r.wire.totalBytes, 2 * GiB + 21 * MiB);
  assert.deepEqual(r.wire.cpBlocks, { data: 10, logRef: 100, patch: 0, copy: 0, zero: 0, diff: 0 });
  assert.equal(r.ratios.wireToClient, Math.round(((2 * GiB + 21 * MiB) / (2 * GiB)) * 1e5) / 1e5);
  assert.equal(r.ratios.cpSyncToClient, Math.round((20 / 2048) * 1e5) / 1e5);
  assert.equal(r.loadSeconds, 10);
  assert.equal(r.totalSeconds, 12);
  assert.equal(r.throughputMiBs, 204.8);
  assert.equal(r.committedThroughputMiBs, Math.round((2048 / 12) * 100) / 100);
  assert.deepEqual(r.latencyMs, { p50: 50, p99: 99, max: 100 });
  // 6 CPU seconds on the source and 3 on the destination for 2 GiB.
  assert.deepEqual(r.cpuSecondsPerGiB, { source: 3, destination: 1.5, total: 4.5 });
  assert.deepEqual(r.cpuSeconds, { source: 6, destination: 3, bench: 1, other: 2.5 });
  assert.deepEqual(r.peakRssMiB, { source: 300, destination: 200 });
  assert.deepEqual(r.cpMs, { p50: 20, p99: 30, max: 30, samples: 3 });
  assert.equal(r.peakRssIncludesSetup, false);
  assert.equal(runResult(measurement("refs", { peakRssReset: false })).peakRssIncludesSetup, true);
});

Deno.test("runResult: local mode has no wire ratios and no destination", () => {
  const r = runResult(measurement("local"));
  assert.deepEqual(r.ratios, { wireToClient: null, cpSyncToClient: null });
  assert.equal(r.cpuSecondsPerGiB.destination, null);
  assert.equal(r.cpuSecondsPerGiB.total, 3);
  assert.equal(r.peakRssMiB.destination, null);
  assert.equal(r.cpuSeconds.other, 5.5);
});

Deno.test("runResult: empty run gives nulls, not NaN or Infinity", () => {
  const m = measurement("refs", { clientBytes: 0, latenciesMs: [], cpDurationsMs: [] });
  const r = runResult(m);
  assert.equal(r.throughputMiBs, 0);
  assert.equal(r.ratios.wireToClient, null);
  assert.equal(r.cpuSecondsPerGiB.source, null);
  assert.deepEqual(r.latencyMs, { p50: null, p99: null, max: null });
  assert.ok(!JSON.stringify(r).includes("NaN"));
});

function withFigures(mode: Mode, tp: number, cpuSource: number, cpSync: number, wire: number) {
  const r = runResult(measurement(mode));
  return {
    ...r,
    throughputMiBs: tp,
    cpuSecondsPerGiB: { ...r.cpuSecondsPerGiB, source: cpuSource },
    ratios: mode === "local" ? r.ratios : { wireToClient: wire, cpSyncToClient: cpSync },
  };
}

Deno.test("compareRuns: each run against the full and local run of its workload", () => {
  const runs = compareRuns([
    withFigures("refs", 80, 3, 0.005, 1.005),
    withFigures("full", 40, 4, 1.0, 2.0),
    withFigures("local", 100, 2, 0, 0),
  ]);
  const [refs, full, local] = runs;
  assert.equal(refs.vs.full!.throughput, 2);
  assert.equal(refs.vs.local!.throughput, 0.8);
  assert.equal(refs.vs.local!.cpuPerGiBSource, 1.5);
  assert.equal(refs.vs.full!.cpSyncBytesPerClientByte, 0.005);
  assert.equal(refs.vs.local!.wireBytesPerClientByte, null);
  assert.equal(full.vs.full, null, "a run is not compared with itself");
  assert.equal(full.vs.local!.throughput, 0.4);
  assert.equal(local.vs.local, null);
  assert.equal(local.vs.full!.throughput, 2.5);
  assert.equal(refs.vs.naive, null, "no naive run: no comparison");
  const [withNaive] = compareRuns([
    withFigures("refs", 80, 3, 0.005, 1.005),
    withFigures("naive", 160, 1.5, 0, 1),
  ]);
  assert.equal(withNaive.vs.naive!.throughput, 0.5);
  assert.equal(withNaive.vs.naive!.cpuPerGiBSource, 2);
});

Deno.test("evaluateGoals: thresholds, inclusive, and n/a when a mode is missing", () => {
  const at = (refsTp: number, refsCpu: number, cpSync: number, wire: number, w = "aligned") => [
    { ...withFigures("refs", refsTp, refsCpu, cpSync, wire), workload: w },
    { ...withFigures("local", 100, 2, 0, 0), workload: w },
  ];
  const goals = [
    "refs cpSync/client ≤ 1%",
    "refs wire/client ≤ 1.01",
    "refs throughput ≥ 0.8× local",
    "refs source CPU/GiB ≤ 1.5× local",
    "refs peak RSS < 300 MiB each side",
    "refs CPU/GiB (both sides) ≤ 0.5× naive",
    "refs throughput ≥ 1.3× naive",
  ];
  const met = evaluateGoals(at(80, 3, 0.01, 1.01), ["aligned"]);
  assert.deepEqual(met.map((g) => g.goal), goals);
  // The measurement's source peaks at exactly 300 MiB: not under 300. No naive run: n/a.
  assert.deepEqual(met.map((g) => g.met), [true, true, true, true, false, null, null]);
  assert.deepEqual(
    met.map((g) => g.measured),
    ["1.00%", "1.0100", "0.80×", "1.50×", "300 MiB", "n/a", "n/a"],
  );
  const missed = evaluateGoals(at(79, 3.1, 0.0101, 1.0101), ["aligned"]);
  assert.deepEqual(missed.map((g) => g.met).slice(0, 4), [false, false, false, false]);
  // Unaligned allows 5% of CP sync and 1.03 on the wire.
  const un = evaluateGoals(at(90, 2, 0.049, 1.03, "unaligned"), ["unaligned"]);
  assert.deepEqual(un.slice(0, 2).map((g) => [g.goal, g.met]), [
    ["refs cpSync/client ≤ 5%", true],
    ["refs wire/client ≤ 1.03", true],
  ]);
  // Repeated and real content: wire/client at most 0.30, no cpSync goal.
  for (const w of ["duplicate", "mixed", "realfiles"]) {
    const g = evaluateGoals(at(90, 2, 0.5, 0.3, w), [w]);
    assert.deepEqual(g.map((x) => x.goal), [
      "refs wire/client ≤ 0.30",
      "refs throughput ≥ 0.8× local",
      "refs source CPU/GiB ≤ 1.5× local",
      "refs peak RSS < 300 MiB each side",
    ]);
    assert.equal(g[0].met, true);
    assert.equal(evaluateGoals(at(90, 2, 0.5, 0.3001, w), [w])[0].met, false);
  }
  // Without the local run the comparison goals are not measured.
  const alone = evaluateGoals([withFigures("refs", 80, 3, 0.001, 1.001)], ["aligned"]);
  assert.deepEqual(alone.map((g) => g.met).slice(0, 4), [true, true, null, null]);
});

Deno.test("evaluateGoals: refs against the naive mirror on aligned, both sides' CPU", () => {
  const refs = withFigures("refs", 130, 3, 0.001, 1.001);
  const naive = withFigures("naive", 100, 1, 0, 1);
  const goal = (tp: number, total: number, naiveTotal: number) =>
    evaluateGoals([
      { ...refs, throughputMiBs: tp, cpuSecondsPerGiB: { ...refs.cpuSecondsPerGiB, total } },
      { ...naive, cpuSecondsPerGiB: { ...naive.cpuSecondsPerGiB, total: naiveTotal } },
    ], ["aligned"]).slice(-2).map((g) => [g.measured, g.met]);
  assert.deepEqual(goal(130, 4, 8), [["0.50×", true], ["1.30×", true]]);
  assert.deepEqual(goal(129, 4.1, 8), [["0.51×", false], ["1.29×", false]]);
  // Only on aligned.
  assert.ok(
    !evaluateGoals([{ ...refs, workload: "mixed" }, { ...naive, workload: "mixed" }], ["mixed"])
      .some((g) => g.goal.includes("naive")),
  );
});

Deno.test("runResult: savings shares are null until the appliance counts them", () => {
  const r = runResult(measurement("refs"));
  assert.deepEqual(r.savings, { compressionShare: null, dedupShare: null });
  assert.match(JSON.stringify(r), /"savings":\{"compressionShare":null,"dedupShare":null\}/);
});

Deno.test("runResult: the compression share of the savings comes from the raw wire counters", () => {
  const base = measurement("refs");
  const withRaw = (s: Snapshot, logRaw: number, cpRaw: number): Snapshot => ({
    ...s,
    wire: { ...s.wire, logBytesRaw: logRaw, cpSyncBytesRaw: cpRaw },
  });
  // 2 GiB of client bytes went as 1 GiB: 1.5 GiB before compression (references saved the rest).
  const m: RunMeasurement = {
    ...base,
    before: withRaw(
      { ...base.before, wire: { ...base.before.wire, logBytes: 0, cpSyncBytes: 0 } },
      0,
      0,
    ),
    after: withRaw(
      { ...base.after, wire: { ...base.after.wire, logBytes: GiB, cpSyncBytes: 0 } },
      1.5 * GiB,
      0,
    ),
  };
  assert.equal(runResult(m).savings.compressionShare, 0.5);
  // An appliance that does not count raw bytes: unknown, not 0.
  assert.equal(runResult(base).savings.compressionShare, null);
  // Under 1% saved: nothing to share out.
  const tiny: RunMeasurement = {
    ...m,
    after: withRaw(
      { ...m.after, wire: { ...m.after.wire, logBytes: 2 * GiB - MiB } },
      2 * GiB + 10 * MiB,
      0,
    ),
  };
  assert.equal(runResult(tiny).savings.compressionShare, null);
});

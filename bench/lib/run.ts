/**
 * One benchmark run: a workload in one mode, on fresh appliances.
 *
 * 1. start the destination (unless `local`), then the source pointing at it
 *    (the two sides of bench/naive in `naive` mode, which has no CPs: steps
 *    2 and 5 skip them and there is no volume digest);
 * 2. run the workload's setup, take a CP, reset the peak RSS;
 * 3. snapshot the counters (source stats, /proc CPU of both sides and of the bench);
 * 4. drive the load until the byte budget or the deadline, sampling CP durations;
 * 5. `POST /v1/admin/cp` (commits on both sides), snapshot again, read peak RSS,
 *    compare the two sides' volume digests;
 * 6. SIGTERM both (SIGKILL after a grace period), remove the data folder.
 *
 * @module
 */
import type { Workload } from "../workloads/mod.ts";
import type { Mode } from "./args.ts";
import { checkpoint, CpSampler, drive, getJson, runAll, type SourceStats } from "./driver.ts";
import {
  type ApplianceProcess as Appliance,
  spawnAppliance,
  spawnNaive,
} from "../../tests/support/appliance.ts";
import {
  machineBusySeconds,
  readProcCpu,
  readProcMemory,
  resetPeakRss,
} from "../../tests/support/proc.ts";
import {
  type RunMeasurement,
  type RunResult,
  runResult,
  type Snapshot,
  type Wire,
} from "./stats.ts";

/** Settings of one run. */
export interface RunSettings {
  workload: Workload;
  mode: Mode;
  concurrency: number;
  seconds: number;
  bytes: number;
  /** The run's own data folder (created by the caller, removed by the caller). */
  dir: string;
  /** Extra appliance flags (CP interval, dirty bytes). */
  applianceArgs: string[];
  /** Checkout whose src/main.ts runs the appliances. */
  repo: string;
  log: (line: string) => void;
}

/** A run's figures plus what only the log needs. */
export interface RunOutcome {
  result: RunResult;
  notes: string[];
}

const TOKEN = "refsync-bench-token";
/** An appliance on a loaded machine may take a while to open its data. */
const START_TIMEOUT_MS = 30_000;
/** A graceful stop finishes the CP in progress. */
const STOP_GRACE_MS = 15_000;

/** User + system CPU seconds of a process. */
function cpuSeconds(pid: number | "self"): number {
  const c = readProcCpu(pid);
  return (c.userMs + c.systemMs) / 1000;
}

function cpuOf(a: Appliance | null): number | null {
  return a === null ? null : cpuSeconds(a.pid);
}

/** Counters now; `cpCommitted` is the source's CP count at the same instant. */
async function snapshot(
  source: Appliance,
  dest: Appliance | null,
): Promise<Snapshot & { cpCommitted: number }> {
  const s = await getJson<SourceStats>(source.url, "/v1/admin/stats");
  return {
    cpCommitted: s.cp.committed,
    at: performance.now(),
    clientBytes: s.client.bytesWritten,
    wire: structuredClone(s.wire),
    cpu: { source: cpuOf(source)!, destination: cpuOf(dest), bench: cpuSeconds("self") },
    machineBusy: machineBusySeconds(),
  };
}

/** Runs one workload in one mode; the processes are gone when it returns or throws. */
export async function runOne(s: RunSettings): Promise<RunOutcome> {
  const notes: string[] = [];
  let dest: Appliance | null = null;
  let source: Appliance | null = null;
  const naive = s.mode === "naive";
  try {
    if (naive) {
      dest = await spawnNaive("dest", `${s.dir}/dest`, null, START_TIMEOUT_MS);
      source = await spawnNaive("source", `${s.dir}/source`, dest.url, START_TIMEOUT_MS);
    } else {
      if (s.mode !== "local") {
        dest = await spawnAppliance({
          role: "dest",
          dataDir: `${s.dir}/dest`,
          args: ["--token", TOKEN, ...s.applianceArgs],
          repo: s.repo,
          startTimeoutMs: START_TIMEOUT_MS,
        });
      }
      source = await spawnAppliance({
        role: "source",
        dataDir: `${s.dir}/source`,
        args: [
          "--token",
          TOKEN, // a standalone source's admin calls need a pair token too
          ...(dest ? ["--dest", dest.url, "--cp-sync", s.mode] : []),
          ...s.applianceArgs,
        ],
        repo: s.repo,
        startTimeoutMs: START_TIMEOUT_MS,
      });
    }

    // Setup (unmeasured), committed by a CP.
    const setupOps = s.workload.setup();
    const setupStart = performance.now();
    let setupBytes = 0;
    if (setupOps.length > 0) {
      // Gentler than the load (it is not measured): at most 4 PUTs in flight.
      const setup = await runAll(source.url, setupOps, Math.min(4, s.concurrency));
      setupBytes = setup.bytes;
      if (setup.retried.length) {
        notes.push(
          `setup: ${setup.retried.length} PUT(s) answered 503 and were retried; first: ${
            setup.retried[0]
          }`,
        );
      }
      if (!naive) await checkpoint(source.url, TOKEN);
      s.log(
        `${s.workload.name} / ${s.mode}: setup wrote ${(setupBytes / 2 ** 20).toFixed(0)} MiB in ` +
          `${((performance.now() - setupStart) / 1000).toFixed(1)} s (not measured)`,
      );
    }
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const peakRssReset = resetPeakRss(source.pid) && (dest === null || resetPeakRss(dest.pid));
    if (!peakRssReset) notes.push("could not reset VmHWM: peak RSS includes startup and setup");

    const destWireBefore = dest ? await destWire(dest) : null;
    const before = await snapshot(source, dest);
    const sampler = new CpSampler(source.url, before.cpCommitted);
    const driven = await drive({
      url: source.url,
      concurrency: s.concurrency,
      next: () => s.workload.next(),
      budgetBytes: s.bytes,
      deadline: s.workload.finite ? Infinity : before.at + s.seconds * 1000,
    });
    const loadEnd = performance.now();
    for (const e of driven.errorSamples) notes.push(`error: ${e}`);
    const cpStart = performance.now();
    if (!naive) await checkpoint(source.url, TOKEN);
    const finalCpMs = performance.now() - cpStart;
    await sampler.stop();
    const after = await snapshot(source, dest);
    const peakRss = {
      source: readProcMemory(source.pid).peakRss,
      destination: dest ? readProcMemory(dest.pid).peakRss : null,
    };

    let digestMatch: boolean | null = null;
    if (dest && !naive) {
      const a = await getJson<{ cp: number; digest: string }>(source.url, "/v1/admin/digest");
      const b = await getJson<{ cp: number; digest: string }>(dest.url, "/v1/admin/digest", TOKEN);
      digestMatch = a.cp === b.cp && a.digest === b.digest;
      if (!digestMatch) {
        notes.push(
          `MIRROR DIFFERS: source cp ${a.cp} ${a.digest} vs destination cp ${b.cp} ${b.digest}`,
        );
      }
    }
    if (dest) {
      const destAfter = await destWire(dest);
      const received = destAfter.logBytes - destWireBefore!.logBytes +
        destAfter.cpSyncBytes - destWireBefore!.cpSyncBytes;
      const sent = after.wire.logBytes - before.wire.logBytes + after.wire.cpSyncBytes -
        before.wire.cpSyncBytes;
      if (received !== sent) {
        notes.push(`wire: source counted ${sent} bytes sent, destination ${received} received`);
      }
    }
    const sourceStats = await getJson<SourceStats>(source.url, "/v1/admin/stats");
    if (sourceStats.mirror?.lastError) {
      notes.push(`mirror lastError: ${sourceStats.mirror.lastError}`);
    }

    const m: RunMeasurement = {
      workload: s.workload.name,
      mode: s.mode,
      concurrency: s.concurrency,
      before,
      loadEnd,
      after,
      clientBytes: driven.bytes,
      ops: driven.ops,
      errors: driven.errors,
      latenciesMs: driven.latenciesMs,
      cpDurationsMs: sampler.durationsMs,
      cpCommitted: sampler.committed,
      finalCpMs,
      peakRss,
      peakRssReset,
      digestMatch,
      setup: { bytes: setupBytes, seconds: setupSeconds },
    };
    const result = runResult(m);
    if (result.clientBytesSource !== result.clientBytes) {
      notes.push(
        `client bytes: the bench sent ${result.clientBytes}, the source counted ${result.clientBytesSource}`,
      );
    }
    return { result, notes };
  } finally {
    // Source first: its graceful stop may still talk to the destination.
    for (const a of [source, dest]) {
      if (a === null) continue;
      const { graceful, status } = await a.stop(STOP_GRACE_MS);
      if (!graceful) notes.push(`${a.role} ignored SIGTERM for 15 s: killed`);
      else if (status.code !== 0) {
        notes.push(`${a.role} exited with code ${status.code}: ${a.stderr.slice(-500).trim()}`);
      }
    }
  }
}

async function destWire(dest: Appliance): Promise<Wire> {
  return (await getJson<{ wire: Wire }>(dest.url, "/v1/admin/stats", TOKEN)).wire;
}

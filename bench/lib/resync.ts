/**
 * The resync's cost against the volume's size (issue 10: "the same changes
 * on a volume 16x larger take at most 1.2x the time and bytes").
 *
 * One scenario, run on a small and a 16x larger volume: a real pair with
 * `--sync-policy available` holds `volume` bytes of objects, in sync; the
 * destination is SIGKILLed; the source takes the same `changes` (new objects
 * and overwrites of existing ones, the same bytes in both runs) and commits
 * two CPs locally; the destination restarts on its port. Measured from its
 * listening line until the source reports `in-sync` with the destination at
 * its CP: the seconds, and every replication byte sent meanwhile (log, CP
 * sync and resync streams, as the source counts them, after compression).
 *
 * @module
 */
import {
  adminAuth,
  type ApplianceProcess,
  killAll,
  spawnAppliance,
} from "../../tests/support/appliance.ts";
import { fillXorshift, mixSeed } from "./prng.ts";

/** One run of the scenario. */
export interface ResyncRun {
  volumeBytes: number;
  changedBytes: number;
  seconds: number;
  /** Replication bytes the source sent from the destination's restart to in-sync. */
  wireBytes: number;
  /** Of which resync stream bytes. */
  resyncBytes: number;
  /** Both sides' digests were equal at the end. */
  digestMatch: boolean;
}

/** The two runs and their ratios (large ÷ small). */
export interface ResyncScaling {
  small: ResyncRun;
  large: ResyncRun;
  timeRatio: number;
  bytesRatio: number;
}

const OBJECT_BYTES = 4 << 20;
const TOKEN = "bench-resync";

/** Sizes of the scenario: the large volume is 16x the small one. */
export function resyncSizes(quick: boolean): { small: number; changes: number } {
  return quick ? { small: 8 << 20, changes: 8 << 20 } : { small: 32 << 20, changes: 16 << 20 };
}

/**
 * Runs the scenario on a volume of `small` and of `16 * small` bytes, under
 * `base` (one fresh pair each).
 *
 * @example
 * ```ts
 * const scaling = await runResyncScaling(await Deno.makeTempDir(), true, console.error);
 * console.log(scaling.timeRatio, scaling.bytesRatio);
 * ```
 */
export async function runResyncScaling(
  base: string,
  quick: boolean,
  log: (line: string) => void,
  repo?: string,
): Promise<ResyncScaling> {
  const { small, changes } = resyncSizes(quick);
  const runs: ResyncRun[] = [];
  for (const volume of [small, 16 * small]) {
    const dir = `${base}/resync-${volume}`;
    await Deno.mkdir(dir, { recursive: true });
    try {
      const run = await resyncOnce(dir, volume, changes, repo);
      log(
        `resync: volume ${mib(volume)} MiB, ${mib(changes)} MiB changed: ` +
          `${run.seconds.toFixed(2)} s, ${mib(run.wireBytes).toFixed(1)} MiB sent`,
      );
      runs.push(run);
    } finally {
      await killAll();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  const [s, l] = runs;
  return {
    small: s,
    large: l,
    timeRatio: round(l.seconds / s.seconds),
    bytesRatio: round(l.wireBytes / s.wireBytes),
  };
}

/**
 * One run: a volume of `volume` bytes in sync, the destination down while
 * `changes` bytes are written and two CPs commit locally, then back.
 *
 * @example
 * ```ts
 * const run = await resyncOnce(await Deno.makeTempDir(), 8 << 20, 8 << 20);
 * console.log(run.seconds, run.wireBytes);
 * ```
 */
export async function resyncOnce(
  dir: string,
  volume: number,
  changes: number,
  repo?: string,
): Promise<ResyncRun> {
  const destArgs = ["--token", TOKEN, "--cp-interval", "0"];
  let dst = await spawnAppliance({ role: "dest", dataDir: `${dir}/dest`, args: destArgs, repo });
  const src = await spawnAppliance({
    role: "source",
    dataDir: `${dir}/source`,
    repo,
    args: [
      ...["--dest", dst.url, "--token", TOKEN, "--cp-interval", "0"],
      ...["--sync-policy", "available", "--sync-timeout", "1000"],
    ],
  });
  const objects = volume / OBJECT_BYTES;
  for (let i = 0; i < objects; i++) await put(src, `base/${i}`, OBJECT_BYTES, i + 1);
  await cp(src);
  await untilInSync(src, 120_000);

  const port = dst.port;
  await dst.kill();
  // The same changes whatever the volume: half new objects, half overwrites of the first ones.
  const pieces = changes / OBJECT_BYTES;
  for (let i = 0; i < pieces; i++) {
    const key = i % 2 === 0 ? `new/${i}` : `base/${i}`;
    await put(src, key, OBJECT_BYTES, 1_000_000 + i);
    if (i === Math.floor((pieces - 1) / 2)) await cp(src); // two local CPs: a resync, not a resend
  }
  await cp(src);

  const before = await wireOf(src);
  dst = await spawnAppliance({
    role: "dest",
    dataDir: `${dir}/dest`,
    repo,
    args: [...destArgs, "--port", String(port)],
  });
  const started = performance.now();
  await untilInSync(src, 60_000).catch((e) => {
    throw new Error(`${e.message}\n${src.stderr.slice(-4000)}\n${dst.stderr.slice(-3000)}`);
  });
  const seconds = (performance.now() - started) / 1000;
  const after = await wireOf(src);
  const digests = await Promise.all([src, dst].map((p) => json(p, "/v1/admin/digest")));
  return {
    volumeBytes: volume,
    changedBytes: changes,
    seconds: round(seconds),
    wireBytes: sent(after) - sent(before),
    resyncBytes: after.resyncBytes - before.resyncBytes,
    digestMatch: digests[0].digest === digests[1].digest,
  };
}

interface Wire {
  logBytes: number;
  cpSyncBytes: number;
  baselineBytes: number;
  resyncBytes: number;
}

function sent(w: Wire): number {
  return w.logBytes + w.cpSyncBytes + w.baselineBytes + w.resyncBytes;
}

async function wireOf(src: ApplianceProcess): Promise<Wire> {
  return (await json(src, "/v1/admin/stats")).wire as Wire;
}

/**
 * Polls the source until `mirror.state` is in-sync with the destination at
 * its CP (a CP the destination lacks by one goes with the next CP: one is
 * taken once the pair is in sync).
 */
async function untilInSync(src: ApplianceProcess, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  let last = "";
  for (let i = 0; performance.now() < deadline && i < ms / 20 + 10; i++) {
    const stats = await json(src, "/v1/admin/stats");
    const mirror = stats.mirror as { state: string; destinationCp: number };
    const committed = (stats.cp as { committed: number }).committed;
    if (mirror.state === "in-sync" && mirror.destinationCp === committed) return;
    if (mirror.state === "in-sync" && mirror.destinationCp === committed - 1) await cp(src);
    last = `CP ${committed}, mirror ${JSON.stringify(mirror)}`;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the pair was not in sync within ${ms} ms: ${last}`);
}

async function put(src: ApplianceProcess, key: string, bytes: number, seed: number): Promise<void> {
  const body = new Uint8Array(bytes);
  fillXorshift(body, mixSeed(0x5e5c, seed));
  const res = await fetch(`${src.url}/v1/objects/${key}`, { method: "PUT", body });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${key}: ${res.status} ${text}`);
}

async function cp(src: ApplianceProcess): Promise<void> {
  const res = await fetch(`${src.url}/v1/admin/cp`, { method: "POST", headers: adminAuth(src) });
  const text = await res.text();
  if (!res.ok) throw new Error(`CP: ${res.status} ${text}`);
}

async function json(p: ApplianceProcess, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${p.url}${path}`);
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

function mib(n: number): number {
  return n / 2 ** 20;
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The report's section on the resync's scaling.
 *
 * @example
 * ```ts
 * declare const scaling: ResyncScaling;
 * console.log(renderResync(scaling).join("\n"));
 * ```
 */
export function renderResync(s: ResyncScaling): string[] {
  const row = (r: ResyncRun) =>
    `| ${mib(r.volumeBytes)} MiB | ${mib(r.changedBytes)} MiB | ${r.seconds.toFixed(2)} s | ` +
    `${mib(r.wireBytes).toFixed(1)} MiB | ${mib(r.resyncBytes).toFixed(1)} MiB | ` +
    `${r.digestMatch ? "equal" : "**differ**"} |`;
  const ok = (ratio: number) => (ratio <= 1.2 ? "met" : "**missed**");
  return [
    "## Resync against the volume's size",
    "",
    "A pair with `--sync-policy available` holds the volume in sync; the destination is SIGKILLed; " +
    "the source takes the same changes (new objects and overwrites) and two local CPs; the " +
    "destination restarts. Time from its listening line to `in-sync` at the source's CP, and " +
    "every replication byte the source sent meanwhile (the log the destination lacked, then the " +
    "resync stream: references to that log where it holds the bytes).",
    "",
    "| volume | changed | time | sent | of which resync | digests |",
    "| ------ | ------- | ---- | ---- | --------------- | ------- |",
    row(s.small),
    row(s.large),
    "",
    `16x the volume: time x${s.timeRatio} (goal <= 1.2: ${ok(s.timeRatio)}), bytes ` +
    `x${s.bytesRatio} (goal <= 1.2: ${ok(s.bytesRatio)}).`,
    "",
  ];
}

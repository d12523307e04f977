/**
 * The metric families of an appliance, served as `GET /metrics`. Components
 * bump them through small methods ({@link ClientMetrics} for the request
 * paths, {@link ApplianceMetrics.cpCommitted}, {@link ApplianceMetrics.fsynced});
 * what is counted elsewhere already (wire bytes, the mirror's state and lag,
 * the process) is read at scrape time from {@link ApplianceSources}, so
 * `/metrics` and `/v1/admin/stats` show the same numbers.
 *
 * @module
 */
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import { type FileSystem, nodeFileOps } from "../storage/fs/file-ops.ts";
import { timedFileOps } from "../storage/fs/timed-file-ops.ts";
import { MIRROR_STATES, type MirrorState } from "../protocol/mirror-state/mod.ts";
import { renderText } from "./exposition.ts";
import { processStats } from "./process.ts";
import { type Counter, type CounterChild, type Histogram, Registry } from "./registry.ts";

/** Which API a client request came through. */
export type ClientFace = "native" | "s3";

/** Which way client object bytes went. */
export type ClientDirection = "in" | "out";

/** The `kind` label of `refsync_wire_bytes_total` and the {@link WireStats} field it reads. */
const WIRE_KINDS: Record<string, (w: WireStats) => number> = {
  log: (w) => w.logBytes,
  cp_sync: (w) => w.cpSyncBytes,
  baseline: (w) => w.baselineBytes,
  resync: (w) => w.resyncBytes,
};

/** Bucket upper bounds, seconds: CPs take ms to s, PUTs ms to the sync timeout, fsyncs µs to ms. */
const CP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const PUT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FSYNC_BUCKETS = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];

/** Operations whose acknowledged requests `refsync_put_duration_seconds` times. */
const PUT_OPS = new Set(["put", "PutObject", "UploadPart"]);

/** What the request paths of both faces bump. */
export interface ClientMetrics {
  /** One client request answered with `status` after `seconds` (to the response head). */
  request(face: ClientFace, op: string, status: number, seconds: number): void;
  /** Object bytes an acknowledged write took in, or a read sent out. */
  clientBytes(direction: ClientDirection, bytes: number): void;
}

/** What a source's destination has not acknowledged (0 when unknown, and on a destination). */
export interface LagSample {
  records: number;
  bytes: number;
  /** Age of the oldest unacknowledged record. */
  seconds: number;
}

/** What the appliance counts elsewhere, read at every scrape. */
export interface ApplianceSources {
  mirrorState(): MirrorState;
  /** What the destination has not acknowledged yet of the log written here. */
  lag(): LagSample;
  /** Replication bytes sent (source) or received (destination). */
  wire(): WireStats;
}

/**
 * The families of one appliance.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * const wire = newWireStats();
 * const lag = () => ({ records: 0, bytes: 0, seconds: 0 });
 * const metrics = new ApplianceMetrics({ mirrorState: () => "local", lag, wire: () => wire });
 * metrics.request("native", "put", 201, 0.004);
 * metrics.clientBytes("in", 4096);
 * const text = metrics.render(); // the body of GET /metrics
 * ```
 */
export class ApplianceMetrics implements ClientMetrics {
  readonly registry: Registry = new Registry();
  readonly #requests: Counter;
  readonly #bytes: Record<ClientDirection, CounterChild>;
  readonly #cps: CounterChild;
  readonly #cpDuration: Histogram;
  readonly #putDuration: Histogram;
  readonly #fsyncDuration: Histogram;

  constructor(sources: ApplianceSources) {
    const r = this.registry;
    const state = r.gauge(
      "refsync_mirror_state",
      "The mirror's state: 1 for the current state, 0 for the others.",
      ["state"],
    );
    for (const s of MIRROR_STATES) state.labels(s);
    const unknown = "0 until a handshake told what the destination holds, on a destination, " +
      "and on a source without one";
    const lag = {
      bytes: r.gauge(
        "refsync_mirror_lag_bytes",
        `Log bytes written on this source that its destination has not acknowledged yet (${unknown}).`,
      ).labels(),
      records: r.gauge(
        "refsync_mirror_lag_records",
        `Log records written on this source that its destination has not acknowledged yet (${unknown}).`,
      ).labels(),
      seconds: r.gauge(
        "refsync_mirror_lag_seconds",
        `Age of the oldest log record its destination has not acknowledged (${unknown}).`,
      ).labels(),
    };
    this.#cps = r.counter(
      "refsync_cp_total",
      "CPs committed by this appliance (a destination: CPs applied from its source).",
    ).labels();
    this.#cpDuration = r.histogram(
      "refsync_cp_duration_seconds",
      "Time to commit a CP locally (a destination: to apply its source's CP sync).",
      CP_BUCKETS,
    );
    const wireBytes = r.counter(
      "refsync_wire_bytes_total",
      "Replication request body bytes sent to the destination (source) or received from " +
        "the source (destination), by kind.",
      ["kind"],
    );
    for (const kind of Object.keys(WIRE_KINDS)) wireBytes.labels(kind);
    this.#requests = r.counter(
      "refsync_client_requests_total",
      "Client requests answered, by face (native, s3), operation and HTTP status.",
      ["face", "op", "status"],
    );
    const bytes = r.counter(
      "refsync_client_bytes_total",
      "Object bytes taken in by acknowledged client writes and sent out by client reads.",
      ["direction"],
    );
    this.#bytes = { in: bytes.labels("in"), out: bytes.labels("out") };
    this.#putDuration = r.histogram(
      "refsync_put_duration_seconds",
      "Time to acknowledge a client write of an object body (native PUT, S3 PutObject and " +
        "UploadPart): durable here and on the destination.",
      PUT_BUCKETS,
    );
    this.#fsyncDuration = r.histogram(
      "refsync_fsync_duration_seconds",
      "Time of each fdatasync of the log and the volume.",
      FSYNC_BUCKETS,
    );
    const rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    const cpu = r.counter("process_cpu_seconds_total", "User and system CPU time in seconds.");
    r.onCollect(() => {
      const current = sources.mirrorState();
      for (const s of state.series) s.child.set(s.values[0] === current ? 1 : 0);
      const behind = sources.lag();
      lag.bytes.set(behind.bytes);
      lag.records.set(behind.records);
      lag.seconds.set(behind.seconds);
      const wire = sources.wire();
      for (const s of wireBytes.series) s.child.set(WIRE_KINDS[s.values[0]](wire));
      const p = processStats();
      rss.labels().set(p.rssBytes);
      cpu.labels().set((p.cpuUserMs + p.cpuSystemMs) / 1000);
    });
  }

  request(face: ClientFace, op: string, status: number, seconds: number): void {
    this.#requests.labels(face, op, status).inc();
    if (status < 300 && PUT_OPS.has(op)) this.#putDuration.labels().observe(seconds);
  }

  clientBytes(direction: ClientDirection, bytes: number): void {
    this.#bytes[direction].inc(bytes);
  }

  /** A CP committed (or, on a destination, applied) after `durationMs`. */
  cpCommitted(durationMs: number): void {
    this.#cps.inc();
    this.#cpDuration.labels().observe(durationMs / 1000);
  }

  /** An fdatasync of the log or the volume took `seconds`. */
  fsynced(seconds: number): void {
    this.#fsyncDuration.labels().observe(seconds);
  }

  /**
   * The store options that feed these metrics: `ops` (default node:fs) with
   * its fdatasyncs timed, and the CPs committed. Spread them into
   * `ObjectStore.open`'s options.
   */
  storeHooks(
    ops: FileSystem = nodeFileOps,
  ): { fileOps: FileSystem; cpCommitted: (ms: number) => void } {
    return {
      fileOps: timedFileOps(ops, (seconds) => this.fsynced(seconds)),
      cpCommitted: (ms) => this.cpCommitted(ms),
    };
  }

  /** The text exposition of every family (the body of `GET /metrics`). */
  render(): string {
    return renderText(this.registry);
  }
}

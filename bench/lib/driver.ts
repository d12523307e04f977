/**
 * The HTTP client side: runs a workload's ops against the source with N
 * concurrent requests until a byte budget or a deadline, recording each PUT's
 * latency; samples the source's CP durations while it runs; admin calls.
 *
 * @module
 */
import { authHeader } from "../../src/protocol/auth/mod.ts";
import type { Op } from "../workloads/mod.ts";
import type { Wire } from "./stats.ts";

/** What a drive did. */
export interface DriveResult {
  ops: number;
  /** Client bytes of the acknowledged PUTs. */
  bytes: number;
  errors: number;
  /** The first few failures, for the log. */
  errorSamples: string[];
  latenciesMs: Float64Array;
}

/** Growable array of latencies. */
class Samples {
  #data = new Float64Array(4096);
  #n = 0;

  push(x: number): void {
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = x;
  }

  values(): Float64Array {
    return this.#data.slice(0, this.#n);
  }
}

/** Sends one op; resolves with the status and the response text on failure. */
export async function sendOp(baseUrl: string, op: Op): Promise<{ ok: boolean; detail: string }> {
  const headers: Record<string, string> = {};
  if (op.offset !== undefined) {
    headers["Content-Range"] = `bytes ${op.offset}-${op.offset + op.bytes - 1}/*`;
  }
  const body = op.body();
  if (body instanceof Uint8Array) headers["Content-Length"] = String(body.length);
  // Real file names may hold characters a URL path must escape; the appliance decodes them.
  const path = op.key.split("/").map(encodeURIComponent).join("/");
  const res = await fetch(`${baseUrl}/v1/objects/${path}`, { method: "PUT", headers, body });
  const text = await res.text();
  return { ok: res.ok, detail: res.ok ? "" : `${res.status} ${text.slice(0, 300)}` };
}

/**
 * Runs `ops` (or the workload's endless `next()`) with `concurrency` requests
 * in flight. Stops issuing once `budgetBytes` were issued or `deadline`
 * (performance.now() ms) passed; waits for the requests in flight.
 */
export async function drive(opts: {
  url: string;
  concurrency: number;
  next: () => Op | null;
  budgetBytes: number;
  deadline: number;
  /** Give up after this many failed requests (a broken appliance). */
  maxErrors?: number;
}): Promise<DriveResult> {
  const latencies = new Samples();
  const result = { ops: 0, bytes: 0, errors: 0, errorSamples: [] as string[] };
  let issued = 0;
  const maxErrors = opts.maxErrors ?? 50;
  const worker = async () => {
    while (issued < opts.budgetBytes && performance.now() < opts.deadline) {
      if (result.errors >= maxErrors) return;
      const op = opts.next();
      if (op === null) return;
      issued += op.bytes;
      const t0 = performance.now();
      let outcome: { ok: boolean; detail: string };
      try {
        outcome = await sendOp(opts.url, op);
      } catch (e) {
        outcome = { ok: false, detail: e instanceof Error ? e.message : String(e) };
      }
      const ms = performance.now() - t0;
      if (outcome.ok) {
        latencies.push(ms);
        result.ops++;
        result.bytes += op.bytes;
      } else {
        result.errors++;
        if (result.errorSamples.length < 5) {
          result.errorSamples.push(`PUT ${op.key}: ${outcome.detail}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return { ...result, latenciesMs: latencies.values() };
}

/**
 * Runs a finite list of ops (a setup) with `concurrency` requests in flight.
 * A 503 (the appliance asks to retry later) is retried up to `retries` times
 * after a pause; any other failure, or a last 503, throws. Resolves with the
 * bytes written and the 503s retried (reported: they are a finding too).
 */
export async function runAll(
  url: string,
  ops: Op[],
  concurrency: number,
  retries = 3,
): Promise<{ bytes: number; retried: string[] }> {
  let next = 0;
  let bytes = 0;
  const retried: string[] = [];
  const worker = async () => {
    while (next < ops.length) {
      const op = ops[next++];
      for (let attempt = 0;; attempt++) {
        const r = await sendOp(url, op).catch((e) => ({ ok: false, detail: String(e) }));
        if (r.ok) break;
        if (!r.detail.startsWith("503") || attempt >= retries) {
          throw new Error(`setup failed: PUT ${op.key}: ${r.detail}`);
        }
        retried.push(`PUT ${op.key}: ${r.detail.slice(0, 200)}`);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      bytes += op.bytes;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ops.length) }, worker));
  return { bytes, retried };
}

/** The parts of the source's `GET /v1/admin/stats` the bench reads. */
export interface SourceStats {
  cp: { committed: number; lastDurationMs: number; p50Ms?: number; p99Ms?: number };
  client: { bytesWritten: number; puts: number; rangedPuts?: number };
  wire: Wire;
  mirror?: { lastError?: string | null } | null;
}

/** GET a JSON admin endpoint (with the pair token when given). */
export async function getJson<T>(url: string, path: string, token?: string): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    headers: token ? authHeader(token) : {},
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/**
 * `POST /v1/admin/cp` with the pair token: resolves once the CP committed (on
 * both sides when mirrored).
 */
export async function checkpoint(
  url: string,
  token: string,
): Promise<{ cp: number; digest: string }> {
  const res = await fetch(`${url}/v1/admin/cp`, {
    method: "POST",
    headers: authHeader(token),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST /v1/admin/cp: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/**
 * Samples the source's CP counter every `everyMs` and records the duration
 * of each newly committed CP (`lastDurationMs`). When more than one CP
 * committed between two samples only the last duration is seen: `committed`
 * still counts them all.
 */
export class CpSampler {
  readonly durationsMs: number[] = [];
  committed = 0;
  #url: string;
  #last: number;
  #stop = false;
  #loop: Promise<void>;

  constructor(url: string, startCommitted: number, everyMs = 100) {
    this.#url = url;
    this.#last = startCommitted;
    this.#loop = (async () => {
      while (!this.#stop) {
        await new Promise((r) => setTimeout(r, everyMs));
        if (this.#stop) break;
        try {
          await this.sample();
        } catch {
          // A sample lost under load: the next one catches up.
        }
      }
    })();
  }

  /** Takes one sample now. */
  async sample(): Promise<void> {
    const s = await getJson<SourceStats>(this.#url, "/v1/admin/stats");
    if (s.cp.committed > this.#last) {
      this.committed += s.cp.committed - this.#last;
      this.#last = s.cp.committed;
      this.durationsMs.push(s.cp.lastDurationMs);
    }
  }

  /** Stops sampling (after one last sample). */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
    await this.sample();
  }
}

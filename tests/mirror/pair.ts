/**
 * Helpers for the mirroring tests: a destination and a source as real
 * processes, admin calls with deadlines, and a model of the expected objects
 * that is checked against BOTH sides (bytes, HEAD ETag, list).
 *
 * Every network call here has a deadline ({@link withDeadline}) and reads or
 * cancels its body, so the op and resource sanitizers stay quiet.
 *
 * @module
 */
import { firstDifference } from "../support/bytes.ts";
import { type Expected, Model } from "../support/model.ts";
import { authHeader } from "../../src/protocol/auth/mod.ts";
import type { WireStats } from "../../src/protocol/cp-sync/stats.ts";
import assert from "node:assert/strict";
import { adminAuth, type ApplianceProcess, spawnAppliance } from "../support/appliance.ts";
import { etagHex, etagValue, StreamingEtag } from "../support/blake3.ts";
import { type Answer, objectUrl, request } from "../support/http.ts";
import { compareWithRandom, type Prng, randomStream } from "../support/prng.ts";
import { sleep, withDeadline } from "../support/timeout.ts";

/** Default deadline of one HTTP call (ms). */
export const CALL_MS = 30_000;

/** `fetch` + read the whole body, aborted after `ms`. */
export function call(url: string, init: RequestInit = {}, ms = CALL_MS): Promise<Answer> {
  return withDeadline(ms, (signal) => request(url, { ...init, signal }));
}

/** {@link call}, parsing a JSON body (throws with the text when it is not JSON). */
export async function callJson<T = Record<string, unknown>>(
  url: string,
  init: RequestInit = {},
  ms = CALL_MS,
): Promise<{ status: number; headers: Headers; json: T; text: string }> {
  const a = await call(url, init, ms);
  try {
    return { status: a.status, headers: a.headers, json: JSON.parse(a.text) as T, text: a.text };
  } catch {
    throw new Error(
      `${init.method ?? "GET"} ${url}: ${a.status} with a non-JSON body: ${a.text.slice(0, 300)}`,
    );
  }
}

/** The `Authorization` header of the pair token. */
export const bearer: (token: string) => Record<string, string> = authHeader;

/** Spawns a destination; `port` pins its port (a restart on the port it had). */
export function spawnDest(
  dataDir: string,
  token: string,
  args: string[] = [],
  port?: number,
): Promise<ApplianceProcess> {
  // spawnAppliance passes `--port 0` first; a later `--port` wins (node:util parseArgs).
  const portArgs = port === undefined ? [] : ["--port", String(port)];
  return spawnAppliance({ role: "dest", dataDir, args: ["--token", token, ...portArgs, ...args] });
}

/** Kills `dst` and starts an empty destination on its port: its disk was replaced. */
export async function replaceDest(
  dst: ApplianceProcess,
  dataDir: string,
  token: string,
): Promise<ApplianceProcess> {
  await dst.kill();
  await Deno.remove(dataDir, { recursive: true });
  return await spawnDest(dataDir, token, [], dst.port);
}

/** Spawns a source mirroring to `destUrl`. */
export function spawnMirroredSource(
  dataDir: string,
  destUrl: string,
  token: string,
  args: string[] = [],
): Promise<ApplianceProcess> {
  return spawnAppliance({
    role: "source",
    dataDir,
    args: ["--dest", destUrl, "--token", token, ...args],
  });
}

/** A running pair. */
export interface Pair {
  src: ApplianceProcess;
  dst: ApplianceProcess;
  token: string;
  /** Stops both (SIGTERM, then SIGKILL), source first. */
  stop(): Promise<void>;
}

/** Starts a destination in `${dir}/dest` and a source in `${dir}/source` mirroring to it. */
export async function spawnPair(
  dir: string,
  opts: { token?: string; sourceArgs?: string[]; destArgs?: string[] } = {},
): Promise<Pair> {
  const token = opts.token ?? "pair-token-" + crypto.randomUUID();
  const dst = await spawnDest(`${dir}/dest`, token, opts.destArgs ?? []);
  let src: ApplianceProcess;
  try {
    src = await spawnMirroredSource(`${dir}/source`, dst.url, token, opts.sourceArgs ?? []);
  } catch (e) {
    await dst.kill();
    throw e;
  }
  return {
    src,
    dst,
    token,
    async stop() {
      await src.stop(5000);
      await dst.stop(5000);
    },
  };
}

/**
 * Routes `dst`'s log stream through `proxy` as well: the source's
 * `--dest-log-port` for it, and the destination's `--repl-port` that keeps
 * the stream on its port when it restarts.
 */
export function proxyLogStream(
  proxy: { forward(port: number): number },
  dst: ApplianceProcess,
): { sourceArgs: string[]; destArgs: string[] } {
  const port = dst.logStreamPort;
  assert.notEqual(port, null, "the destination listens for its log stream");
  return {
    sourceArgs: ["--dest-log-port", String(proxy.forward(port!))],
    destArgs: ["--repl-port", String(port)],
  };
}

/** Stops every given process (ignoring the ones already gone), in order. */
export async function stopAll(...procs: Array<ApplianceProcess | null | undefined>): Promise<void> {
  for (const p of procs) if (p) await p.stop(5000).catch(() => {});
}

/** A CP answer. */
export interface CpAnswer {
  cp: number;
  lsn: number;
  digest: string;
}

/** `POST /v1/admin/cp` on the source; asserts 200. */
export async function adminCp(src: ApplianceProcess, ms = 60_000): Promise<CpAnswer> {
  const a = await callJson<CpAnswer>(`${src.url}/v1/admin/cp`, {
    method: "POST",
    headers: adminAuth(src),
  }, ms);
  assert.equal(a.status, 200, `POST /v1/admin/cp: ${a.status} ${a.text.slice(0, 500)}`);
  return a.json;
}

/** `GET /v1/admin/digest`. */
export async function digestOf(p: ApplianceProcess): Promise<{ cp: number; digest: string }> {
  const a = await callJson<{ cp: number; digest: string }>(`${p.url}/v1/admin/digest`);
  assert.equal(a.status, 200, `GET /v1/admin/digest: ${a.status} ${a.text}`);
  return a.json;
}

/** Replication counters of `GET /v1/admin/stats`. */
export type Wire = Pick<
  WireStats,
  "logBytes" | "logBytesRaw" | "cpSyncBytes" | "cpSyncBytesRaw" | "cpBlocks"
>;

/** `GET /v1/admin/stats`. */
export async function statsOf(
  p: ApplianceProcess,
): Promise<
  & { wire: Wire; cp: { committed: number }; mirror?: Record<string, unknown> }
  & Record<string, unknown>
> {
  const a = await callJson<{ wire: Wire; cp: { committed: number } }>(`${p.url}/v1/admin/stats`);
  assert.equal(a.status, 200, `GET /v1/admin/stats: ${a.status} ${a.text}`);
  return a.json;
}

/** The JSON log lines `p` wrote on stderr with event `event`, in order. */
export function logEvents(p: ApplianceProcess, event: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of p.stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const fields = JSON.parse(line) as Record<string, unknown>;
      if (fields.event === event) out.push(fields);
    } catch {
      // Not a log line.
    }
  }
  return out;
}

/** The `mirror` part of a source's stats. */
export interface MirrorStats {
  /** `in-sync`, `out-of-sync`, `initializing`, `resyncing`, `fenced`. */
  state: string;
  /** The link: `connecting`, `connected`, `down`, `refused`, `fenced`. */
  link: string;
  policy: string;
  lag: { records: number; bytes: number; seconds: number; known: boolean };
  progress: unknown;
  connected: boolean;
  lastError: string | null;
  ackedLsn: number;
  destinationCp: number;
  quarantine: { file: string; firstLsn: number; lastLsn: number } | null;
}

/** The mirror state of a source (`GET /v1/admin/stats` → `mirror`). */
export async function mirrorOf(src: ApplianceProcess): Promise<MirrorStats> {
  return (await statsOf(src)).mirror as unknown as MirrorStats;
}

/** Blocks sent in a CP sync, all kinds together. */
export function totalBlocks(w: Wire): number {
  const b = w.cpBlocks;
  return b.data + b.logRef + b.patch + b.copy + b.zero + b.diff;
}

/** `after - before`, field by field. */
export function wireDelta(before: Wire, after: Wire): Wire {
  const d = (k: keyof Wire["cpBlocks"]) => after.cpBlocks[k] - before.cpBlocks[k];
  return {
    logBytes: after.logBytes - before.logBytes,
    logBytesRaw: after.logBytesRaw - before.logBytesRaw,
    cpSyncBytes: after.cpSyncBytes - before.cpSyncBytes,
    cpSyncBytesRaw: after.cpSyncBytesRaw - before.cpSyncBytesRaw,
    cpBlocks: {
      data: d("data"),
      logRef: d("logRef"),
      patch: d("patch"),
      copy: d("copy"),
      zero: d("zero"),
      diff: d("diff"),
    },
  };
}

/** Asserts that both sides report the same committed CP and digest; returns it. */
export async function assertSameDigest(
  src: ApplianceProcess,
  dst: ApplianceProcess,
  context: string,
): Promise<{ cp: number; digest: string }> {
  const a = await digestOf(src);
  const b = await digestOf(dst);
  assert.deepEqual(b, a, `${context}: destination digest differs from the source's`);
  return a;
}

// ------------------------------------------------------------------ model

/**
 * Streams a pseudo-random object of `size` bytes (from `seed`, in 1 MiB chunks)
 * to `base` as a whole PUT, hashing it as it goes; on 200/201 records it in `model`.
 */
export async function putRandomObject(
  base: string,
  model: Model,
  key: string,
  seed: number,
  size: number,
  ms = 60_000,
): Promise<{ status: number; text: string; etag: string }> {
  const chunk = 1024 * 1024;
  const h = new StreamingEtag();
  const answer = await withDeadline(ms, async (signal) => {
    const res = await fetch(objectUrl(base, key), {
      method: "PUT",
      body: randomStream(seed, size, chunk, (c) => h.update(c)),
      signal,
      // @ts-ignore: Deno streams request bodies with duplex "half"
      duplex: "half",
    });
    return { status: res.status, text: await res.text() };
  });
  const etag = h.hex(); // the hasher is disposed by its digest: read it once
  if (answer.status === 200 || answer.status === 201) model.putRandom(key, seed, size, chunk, etag);
  return { ...answer, etag };
}

/** `count` whole PUTs of random objects of `size` bytes, keys `${prefix}${i}`; each must be 201. */
export async function putObjects(
  src: ApplianceProcess,
  model: Model,
  rng: Prng,
  prefix: string,
  count: number,
  size: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const put = await putRandomObject(src.url, model, `${prefix}${i}`, rng.int(2 ** 31), size);
    assert.equal(put.status, 201, `PUT ${prefix}${i}: ${put.status} ${put.text}`);
  }
}

/** An object of the list API. */
export interface Listed {
  key: string;
  size: number;
  etag: string;
  mtime: number;
}

/** The whole list (paginated with `limit`, bounded by `maxPages`). */
export async function listAll(base: string, limit = 7, maxPages = 1000): Promise<Listed[]> {
  const out: Listed[] = [];
  let after: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const q: string = `limit=${limit}` +
      (after === null ? "" : `&start-after=${encodeURIComponent(after)}`);
    const a: { status: number; json: { objects: Listed[]; next: string | null }; text: string } =
      await callJson<{ objects: Listed[]; next: string | null }>(`${base}/v1/objects?${q}`);
    assert.equal(a.status, 200, `list: ${a.status} ${a.text}`);
    out.push(...a.json.objects);
    if (a.json.next === null) return out;
    after = a.json.next;
  }
  throw new Error(`list of ${base} did not end within ${maxPages} pages`);
}

/** Checks one side's copy of `key` against `e` (GET bytes, HEAD ETag); returns the ETag. */
async function checkOne(base: string, side: string, key: string, e: Expected): Promise<string> {
  const url = objectUrl(base, key);
  const head = await call(url, { method: "HEAD" });
  assert.equal(head.status, 200, `${side}: HEAD ${key}: ${head.status}`);
  const size = e.kind === "bytes" ? e.bytes.length : e.size;
  assert.equal(head.headers.get("Content-Length"), String(size), `${side}: HEAD ${key} size`);
  const etag = etagValue(head.headers.get("ETag"));
  if (e.kind === "bytes") {
    const got = await call(url);
    assert.equal(got.status, 200, `${side}: GET ${key}: ${got.status} ${got.text.slice(0, 200)}`);
    const diff = firstDifference(got.bytes, e.bytes);
    assert.equal(
      diff,
      -1,
      `${side}: ${key}: read ${got.bytes.length} bytes, want ${e.bytes.length}; first difference at ${diff}`,
    );
    assert.equal(
      etag,
      etagHex(e.bytes),
      `${side}: HEAD ${key}: ETag is not that of the bytes`,
    );
  } else {
    // Streamed compare: never more than one chunk of the object in memory.
    await withDeadline(120_000, async (signal) => {
      const res = await fetch(url, { signal });
      assert.equal(res.status, 200, `${side}: GET ${key}: ${res.status}`);
      const h = new StreamingEtag();
      try {
        await compareWithRandom(res.body!, e.seed, e.size, e.chunk, (c) => h.update(c));
      } catch (err) {
        await res.body?.cancel().catch(() => {});
        throw new Error(`${side}: ${key}: ${err instanceof Error ? err.message : err}`);
      }
      assert.equal(h.hex(), e.etag, `${side}: ${key}: ETag of the body`);
    });
    assert.equal(etag, e.etag, `${side}: HEAD ${key}: ETag`);
  }
  return etag!;
}

/**
 * Every object of `model` reads back identically from every side (bytes, HEAD
 * ETag equal across sides and to BLAKE3 of the expected bytes), every deleted
 * key is 404 on every side, and the lists of all sides are equal and hold
 * exactly the model's keys.
 */
export async function verifySides(
  model: Model,
  sides: Record<string, ApplianceProcess>,
  context: string,
): Promise<void> {
  const names = Object.keys(sides);
  for (const [key, e] of model.objects) {
    const etags = new Set<string>();
    for (const name of names) {
      etags.add(await checkOne(sides[name].url, `${context}/${name}`, key, e));
    }
    assert.equal(etags.size, 1, `${context}: ${key}: ETags differ between sides: ${[...etags]}`);
  }
  for (const key of model.deleted) {
    for (const name of names) {
      const a = await call(objectUrl(sides[name].url, key));
      assert.equal(a.status, 404, `${context}/${name}: deleted ${key} answers ${a.status}`);
    }
  }
  const lists: Listed[][] = [];
  for (const name of names) lists.push(await listAll(sides[name].url));
  for (let i = 1; i < lists.length; i++) {
    assert.deepEqual(
      lists[i],
      lists[0],
      `${context}: list of ${names[i]} differs from ${names[0]}`,
    );
  }
  assert.deepEqual(lists[0].map((o) => o.key), model.sortedKeys(), `${context}: listed keys`);
}

/** Waits until `check` returns a value (not undefined), at most `attempts` times and `ms` ms. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { attempts?: number; ms?: number; pauseMs?: number } = {},
): Promise<T> {
  const attempts = opts.attempts ?? 200;
  const deadline = Date.now() + (opts.ms ?? 20_000);
  let last: unknown = "never tried";
  for (let i = 0; i < attempts && Date.now() < deadline; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
      last = "not yet";
    } catch (e) {
      last = e;
    }
    await sleep(opts.pauseMs ?? 100);
  }
  throw new Error(`${what}: gave up after ${attempts} attempts / ${opts.ms ?? 20_000} ms: ${last}`);
}

/** Waits for a source's `mirror.state` to be `state` (at most `ms`); its mirror stats then. */
export function untilState(src: ApplianceProcess, state: string, ms: number): Promise<MirrorStats> {
  return eventually(`mirror.state ${state}`, async () => {
    const m = await mirrorOf(src);
    return m.state === state ? m : undefined;
  }, { ms, attempts: Math.ceil(ms / 100) + 10, pauseMs: 100 });
}

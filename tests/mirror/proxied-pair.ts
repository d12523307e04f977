/**
 * A pair whose link goes through a {@link FaultProxy}: the source's `--dest`
 * is the proxy, which forwards to the destination's port (kept across a
 * restart of the destination). Writes go through a {@link Model} with their
 * outcome: acknowledged, or in flight until {@link settleAll} settles them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, copyDir, withTempDir } from "../support/appliance.ts";
import { FaultProxy, type ProxyMode } from "../support/fault-proxy.ts";
import { objectUrl } from "../support/http.ts";
import type { Model } from "../support/model.ts";
import { Prng, withSeed } from "../support/prng.ts";
import type { WireStats } from "../../src/protocol/cp-sync/stats.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  proxyLogStream,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  untilState,
  verifySides,
} from "./pair.ts";

/** The source's `--sync-timeout` (ms). */
export const SYNC_TIMEOUT_MS = 2000;

/** A destination, a proxy in front of it, and a source whose `--dest` is the proxy. */
export interface ProxiedPair {
  src: ApplianceProcess;
  dst: ApplianceProcess;
  proxy: FaultProxy;
  token: string;
  /** The destination's data directory. */
  destDir: string;
  /** Starts the source again on its data directory, with the same arguments. */
  restartSource(): Promise<ApplianceProcess>;
  /** Starts the destination again on its data directory and port. */
  restartDest(): Promise<ApplianceProcess>;
}

/**
 * Runs `fn` on a proxied pair in a fresh directory (no CP timer: the test
 * takes the CPs; `--sync-timeout` {@link SYNC_TIMEOUT_MS} and `sourceArgs`),
 * seeded by `seed`; stops everything after.
 */
export function withProxiedPair(
  name: string,
  seed: number,
  sourceArgs: string[],
  fn: (pair: ProxiedPair, rng: Prng) => Promise<void>,
): Promise<void> {
  return withSeed(seed, name, () =>
    withTempDir(`refsync-${name}-`, async (dir) => {
      const token = `${name}-${crypto.randomUUID()}`;
      const destArgs = ["--cp-interval", "0"];
      const dst = await spawnDest(`${dir}/dest`, token, destArgs);
      const port = dst.port;
      const proxy = await FaultProxy.start(port);
      // The log stream goes through the proxy too, and keeps its port when the destination restarts.
      const { destArgs: keepPort, sourceArgs: viaProxy } = proxyLogStream(proxy, dst);
      destArgs.push(...keepPort);
      const args = [
        "--cp-interval",
        "0",
        "--sync-timeout",
        String(SYNC_TIMEOUT_MS),
        ...viaProxy,
        ...sourceArgs,
      ];
      const spawnSource = () => spawnMirroredSource(`${dir}/source`, proxy.url, token, args);
      const pair: Partial<ProxiedPair> & Pick<ProxiedPair, "dst"> = {
        dst,
        proxy,
        token,
        destDir: `${dir}/dest`,
        restartSource: async () => (pair.src = await spawnSource()),
        restartDest: async () => (pair.dst = await spawnDest(`${dir}/dest`, token, destArgs, port)),
      };
      try {
        pair.src = await spawnSource();
        await fn(pair as ProxiedPair, new Prng(seed));
      } finally {
        await stopAll(pair.src, pair.dst);
        await proxy.close();
      }
    }));
}

/** PUT `bytes` to `key` through `model` (sent, then acknowledged on 2xx), timed. */
export async function put(
  src: ApplianceProcess,
  model: Model,
  key: string,
  bytes: Uint8Array,
): Promise<{ status: number; headers: Headers; text: string; ms: number }> {
  model.send(key, bytes, `PUT ${key}`);
  const t0 = performance.now();
  const a = await call(objectUrl(src.url, key), { method: "PUT", body: bytes as BodyInit });
  const ms = performance.now() - t0;
  if (a.status === 200 || a.status === 201) model.ack(key);
  return { status: a.status, headers: a.headers, text: a.text, ms };
}

/**
 * Settles every write left in flight (answered 503, or cut) by what the
 * source holds now: it happened or it did not, nothing else.
 */
export async function settleAll(
  src: ApplianceProcess,
  model: Model,
  keys: Iterable<string>,
): Promise<void> {
  for (const key of keys) {
    if (model.inflight(key) === undefined) continue;
    const got = await call(objectUrl(src.url, key));
    assert.ok(got.status === 200 || got.status === 404, `GET ${key}: ${got.status} ${got.text}`);
    const outcome = model.settle(key, got.status === 404 ? null : got.bytes);
    assert.notEqual(outcome, null, `${key} holds neither its old nor its new content`);
  }
}

/** One object ("before"), acknowledged, and a CP. */
async function syncedCp(pair: ProxiedPair, model: Model, rng: Prng): Promise<void> {
  const a = await put(pair.src, model, "before", rng.bytes(2000));
  assert.equal(a.status, 201, a.text);
  await adminCp(pair.src);
}

/**
 * One object and a CP in sync, then the proxy turns to `mode` (a refusal
 * closes the open connections too: only new ones are refused).
 */
export async function syncedThen(
  pair: ProxiedPair,
  model: Model,
  rng: Prng,
  mode: ProxyMode,
): Promise<void> {
  await syncedCp(pair, model, rng);
  pair.proxy.mode = mode;
  if (mode === "refuse") pair.proxy.cut();
}

/** In sync, a CP, then both sides hold the same image and every object of `model` reads back. */
export async function assertHealed(
  pair: ProxiedPair,
  model: Model,
  context: string,
): Promise<void> {
  await untilState(pair.src, "in-sync", 30_000);
  await adminCp(pair.src);
  await assertSameDigest(pair.src, pair.dst, context);
  await verifySides(model, { source: pair.src, destination: pair.dst }, context);
}

/** The wire counters of a side. */
export async function wireOf(p: ApplianceProcess): Promise<WireStats> {
  return (await statsOf(p)).wire as unknown as WireStats;
}

/**
 * A resync that must send data: the destination's data directory is copied
 * at a CP m; the pair goes on in sync with `objects` objects of `size` bytes
 * and three CPs (the destination commits them, so the source drops their
 * log); then the old copy is put back. The destination is back at CP m with
 * a log that lacks those records, and a write makes the source resync it by
 * the walk by birth CP. Resolves with the bytes written since m.
 */
export async function resyncFromOldCopy(
  pair: ProxiedPair,
  model: Model,
  rng: Prng,
  objects: number,
  size: number,
): Promise<number> {
  await syncedCp(pair, model, rng);
  await pair.dst.stop(5000);
  await copyDir(pair.destDir, `${pair.destDir}-old`);
  await pair.restartDest();
  let changed = 0;
  for (let i = 0; i < objects; i++) {
    const a = await put(pair.src, model, `since/${i}`, rng.bytes(size));
    assert.equal(a.status, 201, a.text);
    changed += size;
    if (i === Math.floor(objects / 2)) await adminCp(pair.src);
  }
  await adminCp(pair.src);
  const tail = await put(pair.src, model, "tail", rng.bytes(100));
  assert.equal(tail.status, 201, tail.text);
  await adminCp(pair.src);
  await pair.dst.stop(5000);
  await Deno.remove(pair.destDir, { recursive: true });
  await Deno.rename(`${pair.destDir}-old`, pair.destDir);
  await pair.restartDest();
  // A write finds the destination behind: the handshake that follows starts the resync.
  const after = await put(pair.src, model, "after", rng.bytes(100));
  assert.equal(after.status, 201, after.text);
  return changed;
}

/** About `size` bytes of text: random words, which zstd compresses a few times, not to nothing. */
export function wordText(rng: Prng, size: number): Uint8Array {
  const words = Array.from({ length: 256 }, () => rng.int(2 ** 40).toString(36));
  const out: string[] = [];
  for (let n = 0; n < size;) {
    const w = words[rng.int(words.length)];
    out.push(w);
    n += w.length + 1;
  }
  return new TextEncoder().encode(out.join(" "));
}

/**
 * The log stream between real appliances: log batches go on it (not as HTTP
 * requests) and the destination holds every acknowledged write; `--repl-port
 * off` on the destination or `--dest-log-port off` on the source keeps them on
 * HTTP with the same result; a destination killed under a write load loses no
 * acknowledged write, and the source opens a new stream to its successor.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import type { WireStats } from "../../src/protocol/cp-sync/stats.ts";
import {
  adminCp,
  assertSameDigest,
  bearer,
  call,
  callJson,
  eventually,
  logEvents,
  spawnDest,
  spawnPair,
  statsOf,
  stopAll,
} from "./pair.ts";

async function wireOf(p: Parameters<typeof statsOf>[0]): Promise<WireStats> {
  return (await statsOf(p)).wire as unknown as WireStats;
}

/** PUTs `n` objects (1 B to 2.5 MiB: one record and several); returns them by key. */
async function putSome(url: string, rng: Prng, n: number, prefix: string) {
  const written = new Map<string, Uint8Array>();
  for (let i = 0; i < n; i++) {
    const bytes = rng.bytes(rng.range(1, 2_500_000));
    const key = `${prefix}/${i}`;
    const a = await call(objectUrl(url, key), { method: "PUT", body: bytes as BodyInit });
    assert.equal(a.status, 201, `PUT ${key}: ${a.status} ${a.text}`);
    assert.equal(a.headers.get("Refsync-Mirror"), "in-sync");
    written.set(key, bytes);
  }
  return written;
}

/** After a CP: both digests equal, and the destination serves every object as written. */
async function assertMirrored(
  pair: { src: Parameters<typeof statsOf>[0]; dst: Parameters<typeof statsOf>[0] },
  written: Map<string, Uint8Array>,
  context: string,
) {
  await adminCp(pair.src);
  await assertSameDigest(pair.src, pair.dst, context);
  for (const [key, bytes] of written) {
    const got = await fetch(objectUrl(pair.dst.url, key));
    assert.equal(got.status, 200, `${context}: GET ${key} from the destination`);
    assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes, `${context}: ${key}`);
  }
}

for (
  const { name, destArgs, sourceArgs, stream } of [
    { name: "on the stream", destArgs: [], sourceArgs: [], stream: true },
    {
      name: "--repl-port off: as HTTP requests",
      destArgs: ["--repl-port", "off"],
      sourceArgs: [],
      stream: false,
    },
    {
      name: "--dest-log-port off: as HTTP requests",
      destArgs: [],
      sourceArgs: ["--dest-log-port", "off"],
      stream: false,
    },
  ]
) {
  Deno.test(`log stream: log batches go ${name}; the destination holds every acknowledged write`, async () => {
    const seed = testSeed(0x5_7e4a);
    await withSeed(seed, name, async () => {
      await withTempDir("refsync-log-stream-", async (dir) => {
        const pair = await spawnPair(dir, {
          destArgs: ["--cp-interval", "0", ...destArgs],
          sourceArgs: ["--cp-interval", "0", ...sourceArgs],
        });
        try {
          const written = await putSome(pair.src.url, new Prng(seed), 12, "s");
          // The port it prints when ready is the one its handshake announces (null when off).
          const state = await callJson<{ logStreamPort: number | null }>(
            `${pair.dst.url}/v1/repl/state`,
            { headers: bearer(pair.token) },
          );
          assert.equal(pair.dst.logStreamPort, state.json.logStreamPort);
          assert.equal(pair.dst.logStreamPort === null, (destArgs as string[]).includes("off"));
          const [src, dst] = [await wireOf(pair.src), await wireOf(pair.dst)];
          assert.ok(src.logFrames > 12, `${src.logFrames} frames forwarded`);
          if (stream) {
            assert.ok(src.logStreamBatches > 0, "batches went on the stream");
            assert.equal(dst.logStreamBatches, src.logStreamBatches, "the destination took each");
          } else {
            assert.equal(src.logStreamBatches, 0);
            assert.equal(dst.logStreamBatches, 0);
          }
          await assertMirrored(pair, written, name);
        } finally {
          await pair.stop();
        }
      });
    });
  });
}

Deno.test("log stream: a destination SIGKILLed under writes loses no acknowledged write; the source streams to its successor", async () => {
  const seed = testSeed(0x5_7e4b);
  await withSeed(seed, "kill", async () => {
    await withTempDir("refsync-log-stream-kill-", async (dir) => {
      const rng = new Prng(seed);
      const pair = await spawnPair(dir, {
        destArgs: ["--cp-interval", "0"],
        sourceArgs: ["--cp-interval", "0", "--sync-timeout", "1500"],
      });
      let dst = pair.dst;
      try {
        const written = await putSome(pair.src.url, rng, 4, "before");
        // Writes in flight while the destination dies: each either acknowledged or not.
        const inflight = Array.from({ length: 6 }, (_, i) => {
          const bytes = rng.bytes(rng.range(1000, 1_500_000));
          const key = `during/${i}`;
          return call(objectUrl(pair.src.url, key), { method: "PUT", body: bytes as BodyInit })
            .then((a) => ({ key, bytes, status: a.status }));
        });
        await dst.kill();
        const outcomes = await Promise.all(inflight);
        dst = await spawnDest(`${dir}/dest`, pair.token, ["--cp-interval", "0"], dst.port);
        await eventually("writes succeed again", async () => {
          const a = await call(objectUrl(pair.src.url, "probe"), { method: "PUT", body: "p" });
          return a.status === 201 || a.status === 200 ? true : undefined;
        }, { ms: 30_000, pauseMs: 100 });
        for (const o of outcomes) if (o.status === 201) written.set(o.key, o.bytes);
        for (const [key, bytes] of await putSome(pair.src.url, rng, 4, "after")) {
          written.set(key, bytes);
        }
        assert.ok(
          (await wireOf(dst)).logStreamBatches > 0,
          "the restarted destination took batches on a new stream",
        );
        assert.ok(logEvents(dst, "log_stream.opened").length >= 1);
        await assertMirrored({ src: pair.src, dst }, written, "after the kill");
      } finally {
        await stopAll(pair.src, dst);
      }
    });
  });
});

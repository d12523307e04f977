/**
 * The outage policy with real processes (issue 10, item 2): the destination
 * is SIGKILLed.
 *
 * - `--sync-policy available`: every write during the outage succeeds within
 *   6 s with `Refsync-Mirror: out-of-sync` (the first waits --sync-timeout,
 *   the others nothing), `mirror.state` is `out-of-sync` with `lastError`;
 *   the destination restarts on its port, the pair is `in-sync` again within
 *   90 s by itself, and after a CP every write made during the outage reads
 *   back from the destination.
 * - `strict`: the same outage gives 503 and `out-of-sync`.
 *
 * A CP committed during the outage is deferred; one such CP is sent again at
 * the next CP (the destination is one CP behind); more need the resync, which
 * sends what changed during the outage, not the 8 MiB volume (`wire.resyncBytes`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { Model } from "../support/model.ts";
import { Prng } from "../support/prng.ts";
import type { WireStats } from "../../src/protocol/cp-sync/stats.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  logEvents,
  mirrorOf,
  putRandomObject,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  untilState,
  verifySides,
} from "./pair.ts";

const SYNC_TIMEOUT_MS = 2000;
const MiB = 1024 * 1024;
/** Objects of 2 MiB in the volume before the outage. */
const VOLUME_OBJECTS = 4;
/** What the issue allows a write during the outage. */
const WRITE_MS = 6000;

/** A pair with no CP timer (the test takes the CPs), `--sync-policy policy`. */
async function spawnPolicyPair(dir: string, policy: string) {
  const token = "outage-" + crypto.randomUUID();
  const dst = await spawnDest(`${dir}/dest`, token, ["--cp-interval", "0"]);
  const src = await spawnMirroredSource(`${dir}/source`, dst.url, token, [
    "--cp-interval",
    "0",
    "--sync-timeout",
    String(SYNC_TIMEOUT_MS),
    "--sync-policy",
    policy,
  ]);
  return { src, dst, token };
}

/** PUT `bytes` to `key`, timed. */
async function timedPut(src: ApplianceProcess, key: string, bytes: Uint8Array) {
  const t0 = performance.now();
  const a = await call(objectUrl(src.url, key), { method: "PUT", body: bytes as BodyInit });
  return { ...a, ms: performance.now() - t0 };
}

/**
 * The available-policy outage: writes meanwhile, `localCps` CPs during the
 * outage, the destination back, in sync, everything on the destination.
 */
async function availableOutage(localCps: number): Promise<void> {
  await withTempDir("refsync-outage-", async (dir) => {
    const rng = new Prng(0x07a9e + localCps);
    let { src, dst, token } = await spawnPolicyPair(dir, "available");
    const model = new Model();
    try {
      const warm = rng.bytes(5000);
      const first = await timedPut(src, "before", warm);
      assert.equal(first.status, 201, first.text);
      assert.equal(first.headers.get("Refsync-Mirror"), "in-sync");
      model.put("before", warm);
      // A volume much larger than the outage's writes, so a resync that sent it would show.
      for (let i = 0; i < VOLUME_OBJECTS; i++) {
        const put = await putRandomObject(src.url, model, `volume/${i}`, rng.int(2 ** 31), 2 * MiB);
        assert.equal(put.status, 201, put.text);
      }
      await adminCp(src);
      assert.equal((await mirrorOf(src)).state, "in-sync");

      const port = dst.port;
      await dst.kill();
      let outageBytes = 0;
      for (let i = 0; i < 10; i++) {
        const key = `during/${i}`;
        const bytes = rng.bytes(rng.range(1, 300_000));
        outageBytes += Math.ceil(bytes.length / 4096) * 4096;
        const a = await timedPut(src, key, bytes);
        assert.equal(a.status, 201, `PUT ${key} during the outage: ${a.status} ${a.text}`);
        assert.equal(a.headers.get("Refsync-Mirror"), "out-of-sync", `PUT ${key}: header`);
        assert.ok(a.ms < WRITE_MS, `PUT ${key} took ${Math.round(a.ms)} ms`);
        model.put(key, bytes);
        if (i === 4) {
          const m = await mirrorOf(src);
          assert.equal(m.state, "out-of-sync");
          assert.notEqual(m.link, "connected");
          assert.match(String(m.lastError), /unreachable|sync-timeout/);
          assert.equal(m.lag.known, true);
          assert.equal(m.lag.records, 5, "the five records the destination lacks");
          assert.ok(m.lag.bytes > 0 && m.lag.seconds >= 0, JSON.stringify(m.lag));
        }
        if (i % 5 === 4 && localCps > (i === 4 ? 0 : 1)) {
          // A CP during the outage commits here only (deferred).
          const cp = await adminCp(src);
          assert.ok(cp.cp > 0);
        }
      }
      const transitions = logEvents(src, "mirror.state");
      assert.deepEqual(
        transitions.map((l) => [l.from, l.to]),
        [["out-of-sync", "in-sync"], ["in-sync", "out-of-sync"]],
        src.stderr,
      );
      assert.equal(transitions[1].role, "source");
      assert.match(String(transitions[1].cause), /unreachable|sync-timeout/);

      dst = await spawnDest(`${dir}/dest`, token, ["--cp-interval", "0"], port);
      const t0 = performance.now();
      const back = await untilState(src, "in-sync", 90_000);
      assert.ok(performance.now() - t0 < 90_000);
      assert.equal(back.lastError, null);
      assert.deepEqual(
        { records: back.lag.records, bytes: back.lag.bytes },
        { records: 0, bytes: 0 },
      );
      const after = rng.bytes(1000);
      const a = await timedPut(src, "after", after);
      assert.equal(a.status, 201, a.text);
      assert.equal(a.headers.get("Refsync-Mirror"), "in-sync");
      model.put("after", after);
      await adminCp(src);
      await assertSameDigest(src, dst, "after the outage");
      await verifySides(model, { source: src, destination: dst }, "after the outage");
      assert.equal(logEvents(src, "mirror.state").at(-1)?.to, "in-sync");
      const resyncs = logEvents(src, "mirror.catch_up_committed");
      const { wire } = await statsOf(src) as unknown as { wire: WireStats };
      if (localCps < 2) {
        // The destination is at most one CP behind: no catch-up, the CP sync sends it again.
        assert.deepEqual(resyncs, []);
        assert.equal(wire.resyncBytes, 0);
      } else {
        assert.deepEqual(resyncs.map((l) => l.kind), ["resync"], src.stderr);
        // What changed (its blocks, or references to the log the destination got back, and the
        // metadata above them), never the 8 MiB volume.
        assert.ok(wire.resyncBytes > 0, "the resync is counted");
        assert.ok(
          wire.resyncBytes <= 1.15 * outageBytes + 128 * 1024,
          `resync sent ${wire.resyncBytes} bytes for ${outageBytes} bytes written meanwhile`,
        );
      }
      const connected = logEvents(src, "mirror.connected");
      assert.equal(connected[0]?.role, "source", "mirror.connected names the role");
    } finally {
      await stopAll(src, dst);
    }
  });
}

Deno.test("outage policy available: writes go on out of sync while the destination is down, then the pair is in sync by itself", async () => {
  await availableOutage(0);
});

Deno.test("outage policy available: a CP committed during the outage is deferred and sent once the destination is back", async () => {
  await availableOutage(1);
});

Deno.test({
  name: "outage policy available: several CPs during the outage heal by a resync",
  fn: () => availableOutage(2),
});

Deno.test("outage policy strict: the same outage gives 503 and out-of-sync", async () => {
  await withTempDir("refsync-outage-strict-", async (dir) => {
    const { src, dst } = await spawnPolicyPair(dir, "strict");
    try {
      const ok = await timedPut(src, "before", new Uint8Array(100));
      assert.equal(ok.status, 201, ok.text);
      assert.equal(ok.headers.get("Refsync-Mirror"), "in-sync");
      await dst.kill();
      for (let i = 0; i < 2; i++) {
        const a = await timedPut(src, `during/${i}`, new Uint8Array(100));
        assert.equal(a.status, 503, `PUT during the outage: ${a.status} ${a.text}`);
        assert.equal(a.headers.get("Refsync-Mirror"), null, "nothing acknowledged, no header");
        assert.ok(a.ms < SYNC_TIMEOUT_MS + 3000, `503 after ${Math.round(a.ms)} ms`);
      }
      const m = await mirrorOf(src);
      assert.equal(m.state, "out-of-sync");
      assert.equal(m.policy, "strict");
      assert.ok(m.lastError !== null);
    } finally {
      await stopAll(src, dst);
    }
  });
});

Deno.test("outage policy available: a CP deferred while the link stayed up (a stalled destination) is sent once it answers again", async () => {
  await withTempDir("refsync-outage-stall-", async (dir) => {
    const { src, dst } = await spawnPolicyPair(dir, "available");
    let stopped = false;
    try {
      const model = new Model();
      const first = new Uint8Array(3000).fill(1);
      assert.equal((await timedPut(src, "a", first)).status, 201);
      model.put("a", first);
      await adminCp(src);
      // Stalled, not gone: its connection stays open (the request deadline is 2 x --sync-timeout).
      Deno.kill(dst.pid, "SIGSTOP");
      stopped = true;
      const during = new Uint8Array(3000).fill(2);
      const a = await timedPut(src, "b", during);
      assert.equal(a.status, 201, a.text);
      assert.equal(a.headers.get("Refsync-Mirror"), "out-of-sync");
      model.put("b", during);
      await adminCp(src); // committed here only: deferred
      Deno.kill(dst.pid, "SIGCONT");
      stopped = false;
      await untilState(src, "in-sync", 30_000);
      const after = new Uint8Array(3000).fill(3);
      assert.equal((await timedPut(src, "c", after)).status, 201);
      model.put("c", after);
      await adminCp(src);
      await assertSameDigest(src, dst, "after the stall");
      await verifySides(model, { source: src, destination: dst }, "after the stall");
      assert.equal((await mirrorOf(src)).state, "in-sync");
    } finally {
      if (stopped) Deno.kill(dst.pid, "SIGCONT");
      await stopAll(src, dst);
    }
  });
});

/**
 * The pair on a bad link (issue 10, "Must show": faults on the link). The
 * source's `--dest` is a {@link FaultProxy} in front of a real destination:
 *
 * - delay (20-50 ms each chunk): writes are acknowledged in sync, digests equal;
 * - cuts of every connection during a write load: no acknowledged write is
 *   lost, the pair heals by itself, digests equal;
 * - a byte flipped on the way up, in log frames (raw and zstd-compressed) and
 *   in a CP sync part: the destination refuses the request, the source sends
 *   it again, and the destination's image is never wrong;
 * - a silent partition (blackhole): under `strict` writes get 503 within about
 *   2x `--sync-timeout` (no hang), the mirror is `out-of-sync` and its link
 *   `down`; under `available` writes are acknowledged out of sync and the pair
 *   is in sync again once the proxy passes;
 * - a resync through the proxy survives cuts during it.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { Model } from "../support/model.ts";
import { Prng, testSeed } from "../support/prng.ts";
import { sleep } from "../support/timeout.ts";
import type { Progress } from "./catch-up.ts";
import { adminCp, assertSameDigest, eventually, logEvents, mirrorOf, untilState } from "./pair.ts";
import {
  assertHealed,
  put,
  resyncFromOldCopy,
  settleAll,
  SYNC_TIMEOUT_MS,
  syncedThen,
  wireOf,
  withProxiedPair,
  wordText,
} from "./proxied-pair.ts";

/** Why the source lost its link each time (`mirror.lost` causes). */
function lostCauses(src: ApplianceProcess): string[] {
  return logEvents(src, "mirror.lost").map((l) => String(l.cause));
}

Deno.test("link faults: a delayed link (20-50 ms a chunk) acknowledges every write in sync", async () => {
  await withProxiedPair("link-delay", testSeed(0x11f_0001), [], async (pair, rng) => {
    const model = new Model();
    for (let i = 0; i < 12; i++) {
      pair.proxy.delayMs = 20 + rng.int(31);
      const a = await put(pair.src, model, `delayed/${i}`, rng.bytes(rng.range(1, 200_000)));
      assert.equal(a.status, 201, a.text);
      assert.equal(a.headers.get("Refsync-Mirror"), "in-sync", `delayed/${i}`);
      if (i % 4 === 3) await adminCp(pair.src);
    }
    assert.equal((await mirrorOf(pair.src)).state, "in-sync");
    await assertHealed(pair, model, "over a delayed link");
  });
});

Deno.test("link faults: cuts of every connection during a write load lose no acknowledged write", async () => {
  await withProxiedPair("link-cut", testSeed(0x11f_0002), [], async (pair, rng) => {
    const model = new Model();
    const keys: string[] = [];
    let acked = 0;
    let cutting = true;
    const writers = [0, 1, 2].map(async (w) => {
      const wr = new Prng(rng.int(2 ** 31));
      // While the cuts go on, and a few more (bounded).
      for (let i = 0; i < 200 && (cutting || i < 12); i++) {
        const key = `cut/${w}/${i % 6}`; // rewrites too
        keys.push(key);
        const a = await put(pair.src, model, key, wr.bytes(wr.range(1, 150_000)));
        if (a.status === 200 || a.status === 201) acked++;
        else assert.equal(a.status, 503, `PUT ${key}: ${a.status} ${a.text}`);
      }
    });
    let cuts = 0;
    const cutter = (async () => {
      for (let i = 0; i < 4; i++) {
        await sleep(150 + rng.int(200));
        pair.proxy.cut();
        cuts++;
      }
      cutting = false;
    })();
    await Promise.all([...writers, cutter]);
    assert.equal(cuts, 4);
    assert.ok(acked > 0, "some writes were acknowledged");
    await untilState(pair.src, "in-sync", 30_000);
    await settleAll(pair.src, model, keys);
    assert.ok(lostCauses(pair.src).length >= 1, "the cuts broke the link");
    assert.ok(pair.proxy.stats.connections > cuts, "each cut is followed by new connections");
    await assertHealed(pair, model, "after the cuts");
  });
});

Deno.test("link faults: a byte flipped in log frames on the way up is refused and sent again", async () => {
  await withProxiedPair("link-flip-log", testSeed(0x11f_0003), [
    "--sync-timeout",
    "8000",
  ], async (pair, rng) => {
    const model = new Model();
    const warm = await put(pair.src, model, "warm", rng.bytes(1000));
    assert.equal(warm.status, 201, warm.text);
    // Random bytes go raw (incompressible); text of random words goes through zstd.
    const bodies = [rng.bytes(600_000), wordText(rng, 800_000), rng.bytes(300_000)];
    bodies.push(wordText(rng, 500_000));
    for (let i = 0; i < bodies.length; i++) {
      // Past the request's head, inside the frames.
      pair.proxy.corruptNext("up", 4000 + rng.int(20_000));
      const before = pair.proxy.stats.corrupted;
      const a = await put(pair.src, model, `flipped/${i}`, bodies[i]);
      assert.equal(a.status, 201, `PUT flipped/${i}: ${a.status} ${a.text}`);
      assert.equal(a.headers.get("Refsync-Mirror"), "in-sync");
      assert.equal(pair.proxy.stats.corrupted, before + 1, "the byte was flipped");
    }
    // Each flip was refused by the destination (a frame check, or the zstd stream) and the
    // link started again: it never took a damaged frame.
    const causes = lostCauses(pair.src);
    assert.equal(causes.length, bodies.length, causes.join("\n"));
    for (const c of causes) assert.match(c, /answered 4\d\d/);
    await assertHealed(pair, model, "after flipped log frames");
  });
});

Deno.test("link faults: a byte flipped in a CP sync part is refused, the CP is sent again, never wrong", async () => {
  // Every CP block as DATA: the CP parts carry the bytes a flip could damage.
  await withProxiedPair("link-flip-cp", testSeed(0x11f_0004), [
    "--cp-sync",
    "full",
  ], async (pair, rng) => {
    const model = new Model();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) {
        const a = await put(pair.src, model, `cp/${round}/${i}`, rng.bytes(rng.range(1, 400_000)));
        assert.equal(a.status, 201, a.text);
      }
      const before = pair.proxy.stats.corrupted;
      pair.proxy.corruptNext("up", 2000 + rng.int(100_000));
      const cp = await adminCp(pair.src);
      assert.equal(pair.proxy.stats.corrupted, before + 1, "the byte was flipped");
      // The CP committed here; the destination holds it once the sync succeeds again.
      await eventually(`the destination commits CP ${cp.cp}`, async () => {
        const m = await mirrorOf(pair.src);
        return m.destinationCp === cp.cp ? true : undefined;
      }, { ms: 30_000, pauseMs: 100 });
      await assertSameDigest(pair.src, pair.dst, `CP ${cp.cp} after a flipped part`);
    }
    // Each flip was refused by the destination (a malformed record, or the content digest at
    // COMMIT), and the CP sent again.
    const resent = logEvents(pair.src, "mirror.cp_resent");
    assert.equal(resent.length, 3, pair.src.stderr.slice(-3000));
    for (const r of resent) assert.match(String(r.cause), /digest|malformed|CP sync|record/);
    await assertHealed(pair, model, "after flipped CP parts");
  });
});

Deno.test("link faults: a silent partition under strict gives 503 within 2x --sync-timeout, link down", async () => {
  await withProxiedPair("link-blackhole-strict", testSeed(0x11f_0005), [], async (pair, rng) => {
    const model = new Model();
    await syncedThen(pair, model, rng, "blackhole");
    for (let i = 0; i < 3; i++) {
      const a = await put(pair.src, model, `during/${i}`, rng.bytes(3000));
      assert.equal(a.status, 503, `PUT during the partition: ${a.status} ${a.text}`);
      assert.ok(a.ms < 2 * SYNC_TIMEOUT_MS + 1500, `503 after ${Math.round(a.ms)} ms`);
    }
    const m = await mirrorOf(pair.src);
    assert.equal(m.state, "out-of-sync");
    assert.equal(m.link, "down");
    assert.ok(m.lastError !== null);
    pair.proxy.mode = "pass";
    pair.proxy.cut(); // the stalled connections end; new ones pass
    await untilState(pair.src, "in-sync", 30_000);
    await settleAll(pair.src, model, ["during/0", "during/1", "during/2"]);
    assert.equal((await put(pair.src, model, "after", rng.bytes(2000))).status, 201);
    await assertHealed(pair, model, "after the partition (strict)");
  });
});

Deno.test("link faults: a silent partition under available acknowledges writes out of sync, then heals", async () => {
  await withProxiedPair("link-blackhole-available", testSeed(0x11f_0006), [
    "--sync-policy",
    "available",
  ], async (pair, rng) => {
    const model = new Model();
    await syncedThen(pair, model, rng, "blackhole");
    for (let i = 0; i < 6; i++) {
      const a = await put(pair.src, model, `during/${i}`, rng.bytes(rng.range(1, 100_000)));
      assert.equal(a.status, 201, `PUT during the partition: ${a.status} ${a.text}`);
      assert.equal(a.headers.get("Refsync-Mirror"), "out-of-sync");
      assert.ok(a.ms < 2 * SYNC_TIMEOUT_MS + 1500, `acknowledged after ${Math.round(a.ms)} ms`);
      if (i === 2) await adminCp(pair.src); // a deferred CP
    }
    await adminCp(pair.src); // a second: the destination needs a resync
    const m = await mirrorOf(pair.src);
    assert.equal(m.state, "out-of-sync");
    assert.notEqual(m.link, "connected");
    pair.proxy.mode = "pass";
    await untilState(pair.src, "in-sync", 60_000);
    const a = await put(pair.src, model, "after", rng.bytes(2000));
    assert.equal(a.headers.get("Refsync-Mirror"), "in-sync");
    await assertHealed(pair, model, "after the partition (available)");
  });
});

Deno.test("link faults: a resync through the proxy completes in spite of cuts during it", async () => {
  await withProxiedPair("link-resync-cuts", testSeed(0x11f_0007), [], async (pair, rng) => {
    const model = new Model();
    // Slow enough that the resync is seen running, and cut it three times.
    pair.proxy.delayMs = 15;
    await resyncFromOldCopy(pair, model, rng, 12, 1024 * 1024);
    const seen = new Set<number>();
    for (let cut = 0; cut < 3; cut++) {
      const p = await eventually(`the resync runs (cut ${cut})`, async () => {
        const progress = (await mirrorOf(pair.src)).progress as Progress | null;
        return progress && progress.done > 0 && !seen.has(progress.done) ? progress : undefined;
      }, { ms: 60_000, pauseMs: 20, attempts: 5000 });
      assert.equal(p.kind, "resync");
      seen.add(p.done);
      pair.proxy.cut();
    }
    pair.proxy.delayMs = 0;
    await untilState(pair.src, "in-sync", 60_000);
    const committed = logEvents(pair.src, "mirror.catch_up_committed");
    assert.equal(committed.length, 1, pair.src.stderr.slice(-3000));
    assert.equal(committed[0].kind, "resync");
    // A cut costs at most the part in flight and what the destination had not made durable yet
    // (4 MiB each): the resync goes on from its durable progress, not from its start.
    const sent = (await wireOf(pair.src)).resyncBytes;
    const image = committed[0].imageBytes as number;
    const perCut = 8 * 1024 * 1024;
    assert.ok(
      sent > 0 && sent <= image + seen.size * perCut,
      `resync sent ${sent} bytes for ${image}, with ${seen.size} cuts`,
    );
    await assertHealed(pair, model, "after a resync with cuts");
  });
});

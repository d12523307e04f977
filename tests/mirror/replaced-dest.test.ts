/**
 * A destination replaced by an empty one (real processes). First: the old one had
 * acknowledged records past the last CP when its disk was lost; the new one,
 * on an empty data directory at the same address, gets a baseline to that CP,
 * and its log must go on from what the CP covers — the records the old one
 * acknowledged are sent again, with no gap (found by the simulator:
 * `deno task sim --seed 7 --trial 62`; before the fix the forwarder went on
 * from the old destination's acknowledgement, the new one refused every frame
 * for a gap and the pair never got in sync: every strict write then 503).
 * Second: replaced while the pair is idle, so no log is sent whose refusal
 * would tell; the next CP's sync is refused (the destination is at CP 0) and
 * the source must baseline it (found by the simulator:
 * `deno task sim --seed 11 --trial 3`; before the fix it sent that CP sync
 * again at every CP, refused each time, and no CP committed again).
 *
 * @module
 */
import assert from "node:assert/strict";
import { adminAuth, type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { Model } from "../support/model.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import {
  adminCp,
  assertSameDigest,
  callJson,
  type CpAnswer,
  eventually,
  logEvents,
  mirrorOf,
  putObjects,
  putRandomObject,
  replaceDest,
  spawnPair,
  stopAll,
  verifySides,
} from "./pair.ts";

/** A pair whose destination was just replaced by an empty one, at the same address. */
interface Replaced {
  src: ApplianceProcess;
  dst: ApplianceProcess;
  model: Model;
  rng: Prng;
  /** The last CP both sides committed before. */
  cp: CpAnswer;
}

/**
 * A pair with two CPs and three records in no CP (acknowledged by the old
 * destination), whose destination is then replaced; `fn` brings the new one
 * in sync, and then both sides must hold the same image.
 */
function withReplacedDest(
  name: string,
  seedFallback: number,
  fn: (p: Replaced) => Promise<void>,
): Promise<void> {
  const seed = testSeed(seedFallback);
  return withSeed(seed, name, () =>
    withTempDir(`refsync-${name}-`, async (dir) => {
      const rng = new Prng(seed);
      const model = new Model();
      // CPs only when asked: the records after the CP are in the logs only.
      const { src, dst: old, token } = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
      let dst = old;
      try {
        await putObjects(src, model, rng, "cp/", 4, 20_000);
        await adminCp(src);
        const cp = await adminCp(src);
        // Acknowledged by the old destination, in no CP.
        await putObjects(src, model, rng, "log/", 3, 5000);
        dst = await replaceDest(dst, `${dir}/dest`, token);
        await fn({ src, dst, model, rng, cp });
        await assertSameDigest(src, dst, "after the baseline and a CP");
        await verifySides(model, { source: src, dest: dst }, "after the baseline");
      } finally {
        await stopAll(src, dst);
      }
    }));
}

Deno.test("mirror: a destination replaced by an empty one is baselined and its log has no gap", async () => {
  await withReplacedDest("replaced-dest", 0x4e91_0001, async ({ src, model, rng }) => {
    // Strict: acknowledged only once the new destination holds it (a 503 is retried).
    await eventually("a write is acknowledged by the new destination", async () => {
      const put = await putRandomObject(src.url, model, "after", rng.int(2 ** 31), 3000);
      return put.status === 201 || put.status === 200 ? put : undefined;
    }, { ms: 60_000, pauseMs: 200, attempts: 200 });
    await eventually("the mirror is in sync", async () => {
      const m = await mirrorOf(src);
      return m.state === "in-sync" ? m : undefined;
    }, { ms: 30_000, pauseMs: 100, attempts: 300 });
    await adminCp(src);
  });
});

Deno.test("mirror: a destination replaced while the pair is idle is baselined at the next CP", async () => {
  await withReplacedDest("replaced-idle-dest", 0x4e91_0002, async ({ src, cp: before }) => {
    // No write: only CPs are asked for. One may fail (its sync found the destination empty);
    // a later one commits on both sides, after a baseline.
    const cp = await eventually("a CP commits on both sides", async () => {
      const a = await callJson<CpAnswer>(`${src.url}/v1/admin/cp`, {
        method: "POST",
        headers: adminAuth(src),
      }, 30_000);
      return a.status === 200 ? a.json : undefined;
    }, { ms: 30_000, pauseMs: 200, attempts: 20 });
    assert.ok(cp.cp > before.cp, `CP ${cp.cp} after CP ${before.cp}`);
    const baselines = logEvents(src, "mirror.catch_up_started").filter((e) =>
      e.kind === "baseline"
    );
    assert.equal(baselines.length, 1, "one baseline of the new destination");
  });
});

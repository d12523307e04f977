/**
 * A destination replaced by an empty one (real processes): the old one had
 * acknowledged records past the last CP when its disk was lost; the new one,
 * on an empty data directory at the same address, gets a baseline to that CP,
 * and its log must go on from what the CP covers — the records the old one
 * acknowledged are sent again, with no gap (found by the simulator:
 * `deno task sim --seed 7 --trial 62`; before the fix the forwarder went on
 * from the old destination's acknowledgement, the new one refused every frame
 * for a gap and the pair never got in sync: every strict write then 503).
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "../support/appliance.ts";
import { Model } from "../support/model.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import {
  adminCp,
  assertSameDigest,
  eventually,
  mirrorOf,
  putRandomObject,
  spawnDest,
  spawnPair,
  stopAll,
  verifySides,
} from "./pair.ts";

Deno.test("mirror: a destination replaced by an empty one is baselined and its log has no gap", async () => {
  const seed = testSeed(0x4e91_0001);
  await withSeed(
    seed,
    "mirror-replaced-dest",
    () =>
      withTempDir("refsync-replaced-", async (dir) => {
        const rng = new Prng(seed);
        const model = new Model();
        // CPs only when asked: the records after the CP are in the logs only.
        const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
        const { src, token } = pair;
        let dst = pair.dst;
        const port = dst.port;
        try {
          for (let i = 0; i < 4; i++) {
            const put = await putRandomObject(src.url, model, `cp/${i}`, rng.int(2 ** 31), 20_000);
            assert.equal(put.status, 201, put.text);
          }
          await adminCp(src);
          await adminCp(src);
          // Acknowledged by the old destination, in no CP.
          for (let i = 0; i < 3; i++) {
            const put = await putRandomObject(src.url, model, `log/${i}`, rng.int(2 ** 31), 5000);
            assert.equal(put.status, 201, put.text);
          }
          await dst.kill();
          await Deno.remove(`${dir}/dest`, { recursive: true });
          dst = await spawnDest(`${dir}/dest`, token, [], port);
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
          await assertSameDigest(src, dst, "after the baseline and a CP");
          await verifySides(model, { source: src, dest: dst }, "after the baseline");
        } finally {
          await stopAll(src, dst);
        }
      }),
  );
});

/**
 * A baseline restarted to a newer CP keeps what the destination holds (real
 * processes): the source is SIGKILLed at about 30% of a baseline, restarted
 * alone, takes writes and a CP (so the baseline's target is gone), then is
 * restarted with its destination. The destination still records the old
 * catch-up; the new one from the same base sends CHECKs for the blocks of the
 * old target, so what the destination kept is not sent again: the restarted
 * source sends less than the new image, and both runs together at most 1.15x. After a CP the digests are equal and
 * every object reads back from the destination.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSource } from "../support/appliance.ts";
import { untilCommitted, untilDone, withFilledSource } from "./catch-up.ts";
import {
  adminCp,
  assertSameDigest,
  logEvents,
  putRandomObject,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";

const MiB = 1024 * 1024;

Deno.test("mirror baseline to a new target: CHECKs keep what the destination holds", async () => {
  await withFilledSource(
    "baseline-new-target",
    0xba5e_0004,
    { count: 20, sizeOf: (rng) => 8 * MiB - rng.int(4096), prefix: "big/" },
    async ({ dir, rng, token, model, image: filled }) => {
      let image = filled;
      const size = () => 8 * MiB - rng.int(4096);
      const dst = await spawnDest(`${dir}/dest`, token);
      let src = null;
      try {
        const args = ["--cp-interval", "0"];
        const first = await spawnMirroredSource(`${dir}/source`, dst.url, token, args);
        src = first;
        const at = await untilDone(first, 0.3);
        await first.kill();
        src = null;
        const targetBefore = at.targetCp;
        // Alone again: more objects and a CP, so the baseline's target is no longer the last CP.
        const alone = await spawnSource(`${dir}/source`, ["--token", token, ...args]);
        try {
          for (let i = 0; i < 2; i++) {
            const n = size();
            image += Math.ceil(n / 4096) * 4096;
            const put = await putRandomObject(alone.url, model, `more/${i}`, rng.int(2 ** 31), n);
            assert.equal(put.status, 201, put.text);
          }
          await adminCp(alone);
        } finally {
          await alone.stop(5000);
        }
        src = await spawnMirroredSource(`${dir}/source`, dst.url, token, args);
        const source = src;
        await untilCommitted(source);
        const [started] = logEvents(source, "mirror.catch_up_started");
        assert.ok(started, source.stderr.slice(-3000));
        assert.equal(started.baseCp, 0);
        assert.ok((started.targetCp as number) > targetBefore);
        type Counted = { baselineBytes: number };
        const sent = ((await statsOf(source)).wire as unknown as Counted).baselineBytes;
        // What the destination had made durable of the first image is CHECKed, not sent
        // again (at least 10% of it: the kill came at 30% sent, some parts in flight).
        assert.ok(sent <= image - 0.1 * 20 * 8 * MiB, `${sent} bytes sent for ${image}`);
        // Both runs together, as the destination received them: the bound.
        const received = ((await statsOf(dst)).wire as unknown as Counted).baselineBytes;
        assert.ok(received <= 1.15 * image, `${received} bytes in all for ${image}`);
        await adminCp(source);
        await assertSameDigest(source, dst, "after the restarted baseline and a CP");
        await verifySides(model, { dest: dst }, "after the restarted baseline");
      } finally {
        await stopAll(src, dst);
      }
    },
  );
});

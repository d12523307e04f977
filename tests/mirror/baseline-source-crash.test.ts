/**
 * A baseline survives its source's crash (real processes): the source is
 * SIGKILLed at about 30% of a 160 MiB baseline and restarted on the same data
 * directory. Its committed CP is still the target, so it resumes after what
 * the destination made durable (`mirror.catch_up_resumed`), sending the rest
 * and not much more; after a CP the digests are equal and every object reads
 * back from the destination.
 *
 * @module
 */
import assert from "node:assert/strict";
import { untilCommitted, untilDone, withFilledSource } from "./catch-up.ts";
import {
  adminCp,
  assertSameDigest,
  logEvents,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";

const MiB = 1024 * 1024;

Deno.test("mirror baseline source crash: the restarted source resumes where the destination is", async () => {
  await withFilledSource(
    "baseline-source-crash",
    0xba5e_0003,
    { count: 20, sizeOf: (rng) => 8 * MiB - rng.int(4096), prefix: "big/" },
    async ({ dir, token, model, image }) => {
      const dst = await spawnDest(`${dir}/dest`, token);
      let src = null;
      try {
        // No CP of its own meanwhile: the target stays its committed CP.
        const args = ["--cp-interval", "0"];
        src = await spawnMirroredSource(`${dir}/source`, dst.url, token, args);
        const first = src;
        await untilDone(first, 0.3);
        await first.kill();
        src = await spawnMirroredSource(`${dir}/source`, dst.url, token, args);
        const source = src;
        await untilCommitted(source);
        const [resumed] = logEvents(source, "mirror.catch_up_resumed");
        assert.ok(resumed, source.stderr.slice(-3000));
        const held = resumed.doneBytes as number;
        assert.ok(held >= 0.2 * image, `resumed after ${held} of ${image} bytes`);
        assert.equal(logEvents(source, "mirror.catch_up_started").length, 0);
        const wire = (await statsOf(source)).wire as unknown as { baselineBytes: number };
        assert.ok(
          wire.baselineBytes <= image - held + 0.05 * image,
          `${wire.baselineBytes} bytes sent after the restart, ${held} of ${image} held`,
        );
        await adminCp(source);
        await assertSameDigest(source, dst, "after the resumed baseline and a CP");
        await verifySides(model, { dest: dst }, "after the resumed baseline");
      } finally {
        await stopAll(src, dst);
      }
    },
  );
});

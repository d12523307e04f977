/**
 * A baseline survives its destination's crash (real processes): a 400 MiB
 * baseline, the destination SIGKILLed once the source reports about 30% done.
 * Restarted on its port, the destination still records the catch-up (its
 * reads answer 503), the source continues after what the destination had
 * made durable, and the baseline completes having sent at most 1.15x the
 * image in all; after a CP both digests are equal and every object reads
 * back from the destination.
 *
 * @module
 */
import assert from "node:assert/strict";
import { untilCommitted, untilDone, withFilledSource } from "./catch-up.ts";
import { objectUrl } from "../support/http.ts";
import {
  adminCp,
  assertSameDigest,
  callJson,
  logEvents,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";

const MiB = 1024 * 1024;

Deno.test("mirror baseline crash: the destination killed at 30% resumes, 1.15x the image at most", async () => {
  await withFilledSource(
    "baseline-crash",
    0xba5e_0002,
    { count: 50, sizeOf: (rng) => 8 * MiB - rng.int(4096), prefix: "big/" },
    async ({ dir, token, model, image }) => {
      let dst = await spawnDest(`${dir}/dest`, token);
      const port = dst.port;
      let src = null;
      try {
        src = await spawnMirroredSource(`${dir}/source`, dst.url, token);
        const source = src;
        const at = await untilDone(source, 0.3);
        assert.equal(at.kind, "baseline");
        await dst.kill();
        dst = await spawnDest(`${dir}/dest`, token, [], port);
        // Back up, it still knows its image is incomplete.
        const read = await callJson(objectUrl(dst.url, "big/0"));
        assert.equal(read.status, 503, read.text);
        await untilCommitted(source);
        assert.equal(logEvents(source, "mirror.catch_up_committed").length, 1);
        await adminCp(source);
        await assertSameDigest(source, dst, "after the resumed baseline and a CP");
        const wire = (await statsOf(source)).wire as unknown as { baselineBytes: number };
        assert.ok(
          wire.baselineBytes <= 1.15 * image,
          `${wire.baselineBytes} bytes sent for an image of ${image}`,
        );
        await verifySides(model, { dest: dst }, "after the resumed baseline");
      } finally {
        await stopAll(src, dst);
      }
    },
  );
});

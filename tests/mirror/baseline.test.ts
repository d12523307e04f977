/**
 * A baseline (real processes): a source holding 120 objects (about 100 MiB,
 * written while it ran alone) is restarted with an empty destination. The
 * destination records the catch-up before its first block; meanwhile its
 * reads answer 503 and a promotion is refused with 409 and the reason (the
 * source is frozen with SIGSTOP for those calls, so they happen during the
 * baseline for certain); 10 client writes go on beside it (strict policy:
 * acknowledged only once in the destination's log, each within
 * --sync-timeout or 503). Once the baseline committed, a CP makes both
 * digests equal and every object, old and new, reads back from both sides;
 * the baseline sent at most 1.10x the image.
 *
 * @module
 */
import assert from "node:assert/strict";
import { adminAuth } from "../support/appliance.ts";
import { untilCommitted, withFilledSource } from "./catch-up.ts";
import { objectUrl } from "../support/http.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  callJson,
  eventually,
  logEvents,
  putRandomObject,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";

const KiB = 1024;
const SYNC_TIMEOUT_MS = 5000;

Deno.test("mirror baseline: an empty destination gets the image while writes go on", async () => {
  await withFilledSource(
    "baseline",
    0xba5e_0001,
    { count: 120, sizeOf: (rng) => rng.range(400 * KiB, 1300 * KiB), prefix: "old/" },
    async ({ dir, rng, token, model, image }) => {
      const dst = await spawnDest(`${dir}/dest`, token);
      let src = null;
      try {
        src = await spawnMirroredSource(`${dir}/source`, dst.url, token, [
          "--sync-timeout",
          String(SYNC_TIMEOUT_MS),
        ]);
        const source = src;
        // The catch-up is recorded on the destination before its first block, and the source
        // reports its progress from when it starts sending.
        await eventually("the baseline starts", async () => {
          const progress = (await statsOf(source)).mirror?.progress as { kind: string } | null;
          return progress?.kind === "baseline" && (await statsOf(dst)).catchUp ? true : undefined;
        }, { ms: 30_000, pauseMs: 20 });
        Deno.kill(source.pid, "SIGSTOP");
        let writes: Promise<Array<{ status: number; text: string }>> = Promise.resolve([]);
        try {
          const read = await callJson(objectUrl(dst.url, "old/0"));
          assert.equal(read.status, 503, read.text);
          assert.equal(read.json.error, "unavailable");
          assert.match(
            String(read.json.message),
            /initializing \(a baseline\): its image is incomplete/,
          );
          const promote = await callJson(`${dst.url}/v1/admin/promote`, {
            method: "POST",
            headers: adminAuth(dst),
          });
          assert.equal(promote.status, 409, promote.text);
          assert.match(
            String(promote.json.message),
            /holds no complete image: a baseline to CP \d+ is \d+% done .*promote a destination only once mirror.state is in-sync/,
          );
          const state = await callJson<{ catchUp: { baseCp: number } | null }>(
            `${dst.url}/v1/repl/state`,
            { headers: adminAuth(dst) },
          );
          assert.equal(state.json.catchUp?.baseCp, 0);
          const seeds = Array.from({ length: 10 }, () => rng.int(2 ** 31));
          writes = Promise.all(
            seeds.map((seed, i) => putRandomObject(source.url, model, `new/${i}`, seed, 64 * KiB)),
          );
        } finally {
          Deno.kill(source.pid, "SIGCONT");
        }
        // Writes go on beside the baseline: sent while it is recorded (the source stopped), they
        // are answered once it runs again, each within --sync-timeout.
        for (const [i, put] of (await writes).entries()) {
          assert.equal(put.status, 201, `write ${i} during the baseline: ${put.text}`);
        }
        await untilCommitted(source, 180_000);
        const committed = logEvents(source, "mirror.catch_up_committed");
        assert.equal(committed.length, 1, source.stderr.slice(-3000));
        await adminCp(source);
        await assertSameDigest(source, dst, "after the baseline and a CP");
        await verifySides(model, { source, dest: dst }, "after the baseline");
        const wire = (await statsOf(source)).wire as unknown as { baselineBytes: number };
        assert.ok(
          wire.baselineBytes >= image,
          `${wire.baselineBytes} bytes for an image of ${image}`,
        );
        assert.ok(
          wire.baselineBytes <= 1.10 * image,
          `${wire.baselineBytes} bytes for an image of ${image}`,
        );
        const reads = await call(objectUrl(dst.url, "new/9"));
        assert.equal(reads.status, 200);
      } finally {
        await stopAll(src, dst);
      }
    },
  );
});

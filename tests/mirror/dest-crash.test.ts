/**
 * The destination crashes DURING a CP sync (real processes, SIGKILL):
 *
 * 1. a big CP (three 16 MiB PUTs) is started with `POST /v1/admin/cp`; as soon
 *    as the source has committed it locally (its sync to the destination
 *    starts right then), the destination is killed a seeded 0..15 ms later;
 * 2. while it is down, client PUTs get 503 within `--sync-timeout` (1000 ms)
 *    and none is acknowledged; a CP request fails with 503 too;
 * 3. it is restarted on the same data dir and the SAME port: the source's
 *    `--dest` URL is fixed, and the port was bound by this test on 127.0.0.1
 *    a moment ago (restarting both processes instead would not show that the
 *    source reconnects by itself). Right after the restart the destination is
 *    at a CP the source reported before (the last one committed on both
 *    sides, or the one in flight if its commit made it to disk);
 * 4. PUTs succeed again by themselves (no operator action), and after the next
 *    CP both digests are equal and every object reads back from both sides.
 *
 * Replay a failure with `REFSYNC_SEED=<seed> deno test -A tests/mirror/dest-crash.test.ts`.
 *
 * @module
 */
import { firstDifference } from "../support/bytes.ts";
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { adminAuth, withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import { sleep } from "../support/timeout.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  callJson,
  digestOf,
  eventually,
  putRandomObject,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";
import { Model } from "../support/model.ts";

const MiB = 1024 * 1024;
const SYNC_TIMEOUT_MS = 1000;

async function putBytes(base: string, key: string, bytes: Uint8Array) {
  return await callJson<{ error?: string; message?: string; etag?: string }>(
    objectUrl(base, key),
    { method: "PUT", body: bytes as BodyInit },
    30_000,
  );
}

Deno.test("mirror dest crash: killed during a CP sync, back on its port, it catches up by itself", async () => {
  const seed = testSeed(0xdc2a_0001);
  await withSeed(
    seed,
    "mirror-dest-crash",
    () =>
      withTempDir("refsync-mirror-destcrash-", async (tmp) => {
        const rng = new Prng(seed);
        const token = "dest-crash-" + crypto.randomUUID();
        let dst: ApplianceProcess | null = null;
        let src: ApplianceProcess | null = null;
        try {
          dst = await spawnDest(`${tmp}/dest`, token);
          const port = dst.port;
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, [
            "--cp-interval",
            "0",
            "--cp-dirty-bytes",
            "1GiB",
            "--sync-timeout",
            String(SYNC_TIMEOUT_MS),
          ]);
          const model = new Model();

          // A first CP committed on both sides.
          for (let i = 0; i < 5; i++) {
            const bytes = rng.bytes(rng.range(1, 200_000));
            const a = await putBytes(src.url, `small/${i}`, bytes);
            assert.equal(a.status, 201, `PUT small/${i}: ${a.status} ${a.text}`);
            model.put(`small/${i}`, bytes);
          }
          const cp1 = await adminCp(src);
          await assertSameDigest(src, dst, "CP before the crash");

          // A big CP: three 16 MiB objects, streamed.
          for (let i = 0; i < 3; i++) {
            const put = await putRandomObject(src!.url, model, `big/${i}`, rng.u32(), 16 * MiB);
            assert.equal(put.status, 201, `PUT big/${i}: ${put.status} ${put.text}`);
          }

          // Start the CP; kill the destination right after the source committed it locally.
          const committedBefore = (await statsOf(src)).cp.committed;
          const cpCall = call(
            `${src.url}/v1/admin/cp`,
            { method: "POST", headers: adminAuth(src) },
            60_000,
          );
          const localCommit = await eventually("the source commits the big CP", async () => {
            const s = await statsOf(src!);
            return s.cp.committed > committedBefore ? s.cp.committed : undefined;
          }, { attempts: 4000, ms: 30_000, pauseMs: 2 });
          const killDelay = rng.range(0, 15);
          await sleep(killDelay);
          await dst.kill();
          dst = null;
          const cpAnswer = await cpCall;
          const cp2 = await digestOf(src); // the source's committed CP: the one in flight
          assert.equal(cp2.cp, localCommit, "source digest names the CP it committed");
          assert.ok(
            cpAnswer.status === 503 || cpAnswer.status === 200,
            `CP during the crash: ${cpAnswer.status} ${cpAnswer.text}`,
          );

          // While the destination is down: 503 within --sync-timeout, nothing acknowledged.
          const unanswered = new Map<string, Uint8Array>();
          for (let i = 0; i < 3; i++) {
            const key = `while-down/${i}`;
            const bytes = rng.bytes(rng.range(1, 100_000));
            const t0 = performance.now();
            const a = await putBytes(src.url, key, bytes);
            const ms = performance.now() - t0;
            assert.equal(
              a.status,
              503,
              `PUT ${key} with the destination down: ${a.status} ${a.text}`,
            );
            assert.equal(a.json.error, "unavailable", `PUT ${key}: error code`);
            assert.match(
              a.json.message ?? "",
              /not acknowledged|destination/i,
              `PUT ${key}: message`,
            );
            assert.ok(
              ms < SYNC_TIMEOUT_MS + 2000,
              `PUT ${key}: 503 after ${Math.round(ms)} ms; --sync-timeout is ${SYNC_TIMEOUT_MS} ms`,
            );
            unanswered.set(key, bytes);
          }
          const downCp = await call(`${src.url}/v1/admin/cp`, {
            method: "POST",
            headers: adminAuth(src),
          }, 30_000);
          assert.equal(
            downCp.status,
            503,
            `CP with the destination down: ${downCp.status} ${downCp.text}`,
          );

          // Restart on the same data dir and port: it is at a CP the source reported.
          dst = await spawnDest(`${tmp}/dest`, token, [], port);
          assert.equal(dst.port, port, "restarted on its port");
          const atRestart = await digestOf(dst);
          const known = [
            { cp: cp1.cp, digest: cp1.digest },
            { cp: cp2.cp, digest: cp2.digest },
          ];
          assert.ok(
            known.some((k) => k.cp === atRestart.cp && k.digest === atRestart.digest),
            `destination restarted at ${JSON.stringify(atRestart)}, not a CP the source reported: ${
              JSON.stringify(known)
            }`,
          );
          const interrupted = atRestart.cp === cp1.cp;

          // PUTs succeed again by themselves.
          const t0 = performance.now();
          const back = rng.bytes(5000);
          let tries = 0;
          await eventually("a PUT is acknowledged after the destination came back", async () => {
            tries++;
            const a = await putBytes(src!.url, "after/restart", back);
            return a.status === 200 || a.status === 201 ? true : undefined;
          }, { attempts: 30, ms: 30_000, pauseMs: 200 });
          model.put("after/restart", back);
          const recoveredMs = Math.round(performance.now() - t0);
          for (let i = 0; i < 3; i++) {
            const bytes = rng.bytes(rng.range(1, 300_000));
            const a = await putBytes(src.url, `after/${i}`, bytes);
            assert.ok(a.status === 201, `PUT after/${i}: ${a.status} ${a.text}`);
            model.put(`after/${i}`, bytes);
          }

          // The next CP: digests equal, every object on both sides.
          const cp3 = await adminCp(src);
          assert.ok(cp3.cp > cp2.cp, `CP ${cp3.cp} after the interrupted CP ${cp2.cp}`);
          await assertSameDigest(src, dst, "CP after the restart");
          // The writes answered 503 were never acknowledged; whatever became of them, it is
          // whole and the same on both sides.
          for (const [key, bytes] of unanswered) {
            const a = await call(objectUrl(src.url, key));
            if (a.status === 404) {
              model.delete(key);
              continue;
            }
            assert.equal(a.status, 200, `GET ${key}: ${a.status}`);
            assert.equal(
              firstDifference(a.bytes, bytes),
              -1,
              `${key}: unacknowledged write is torn`,
            );
            model.put(key, bytes);
          }
          await verifySides(model, { source: src, destination: dst }, "after catch-up");
          console.log(
            `dest crash: seed=${seed} killDelay=${killDelay}ms CP answer=${cpAnswer.status} ` +
              `destination restarted at CP ${atRestart.cp} (${
                interrupted ? "the sync was interrupted" : "the sync had committed"
              }), first PUT acknowledged again after ${recoveredMs} ms (${tries} tries), next CP ${cp3.cp}`,
          );
        } finally {
          await stopAll(src, dst);
        }
      }),
  );
});

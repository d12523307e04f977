/**
 * The SOURCE crashes during a CP sync (real processes, SIGKILL right after it
 * committed a 48 MiB CP locally, while the `--cp-sync full` stream is on the
 * wire), then restarts on its data dir:
 *
 * - it opens (its previous CP's blocks may already be reused: recovery must
 *   not depend on them);
 * - the handshake finds the destination one CP behind and sends that CP
 *   again, or finds it committed; either way the next CP leaves both digests
 *   equal and every acknowledged object on both sides.
 *
 * Replay a failure with `REFSYNC_SEED=<seed> deno test -A tests/mirror/source-crash.test.ts`.
 *
 * @module
 */
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

Deno.test("mirror source crash: killed during a CP sync, it restarts and the pair converges", async () => {
  const seed = testSeed(0x5c2a_0001);
  await withSeed(
    seed,
    "mirror-source-crash",
    () =>
      withTempDir("refsync-mirror-srccrash-", async (tmp) => {
        const rng = new Prng(seed);
        const token = "source-crash-" + crypto.randomUUID();
        const args = ["--cp-interval", "0", "--cp-dirty-bytes", "1GiB", "--cp-sync", "full"];
        let dst: ApplianceProcess | null = null;
        let src: ApplianceProcess | null = null;
        try {
          dst = await spawnDest(`${tmp}/dest`, token);
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, args);
          const model = new Model();
          for (let i = 0; i < 4; i++) {
            const bytes = rng.bytes(rng.range(1, 300_000));
            const a = await call(objectUrl(src.url, `small/${i}`), { method: "PUT", body: bytes });
            assert.equal(a.status, 201, `PUT small/${i}: ${a.status} ${a.text}`);
            model.put(`small/${i}`, bytes);
          }
          const cp1 = await adminCp(src);
          // Overwrite some, so the next CP releases blocks of this one.
          for (let i = 0; i < 2; i++) {
            const bytes = rng.bytes(rng.range(1, 300_000));
            const a = await call(objectUrl(src.url, `small/${i}`), { method: "PUT", body: bytes });
            assert.equal(a.status, 200, `overwrite small/${i}: ${a.status} ${a.text}`);
            model.put(`small/${i}`, bytes);
          }
          for (let i = 0; i < 3; i++) {
            const put = await putRandomObject(src!.url, model, `big/${i}`, rng.u32(), 16 * MiB);
            assert.equal(put.status, 201, `PUT big/${i}: ${put.status} ${put.text}`);
          }

          // Start the CP; kill the source as soon as it committed locally (its sync is starting).
          const committedBefore = (await statsOf(src)).cp.committed;
          const cpCall = call(
            `${src.url}/v1/admin/cp`,
            { method: "POST", headers: adminAuth(src) },
            60_000,
          ).catch((e) => e);
          const cp2 = await eventually("the source commits the big CP", async () => {
            const s = await statsOf(src!);
            return s.cp.committed > committedBefore ? s.cp.committed : undefined;
          }, { attempts: 4000, ms: 30_000, pauseMs: 2 });
          const srcDigest = await digestOf(src);
          const killDelay = rng.range(0, 5);
          await sleep(killDelay);
          await src.kill();
          src = null;
          await cpCall;

          // Restart: it opens, reconnects, and the pair converges.
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, args);
          assert.deepEqual(
            await digestOf(src),
            srcDigest,
            "the source reopens at the CP it committed",
          );
          const destAtRestart = await digestOf(dst);
          assert.ok(
            destAtRestart.cp === cp1.cp && destAtRestart.digest === cp1.digest ||
              destAtRestart.cp === srcDigest.cp && destAtRestart.digest === srcDigest.digest,
            `destination at ${JSON.stringify(destAtRestart)}: neither CP ${cp1.cp} nor CP ${cp2}`,
          );
          const after = rng.bytes(7000);
          await eventually("a PUT is acknowledged after the restart", async () => {
            const a = await call(objectUrl(src!.url, "after/restart"), {
              method: "PUT",
              body: after,
            });
            return a.status === 201 || a.status === 200 ? true : undefined;
          }, { attempts: 30, ms: 30_000, pauseMs: 200 });
          model.put("after/restart", after);
          const cp3 = await adminCp(src);
          assert.ok(cp3.cp > cp2, `CP ${cp3.cp} after CP ${cp2}`);
          await assertSameDigest(src, dst, "after the source's restart");
          await verifySides(model, { source: src, destination: dst }, "after the source's restart");
          const wire = (await statsOf(src)).wire;
          console.log(
            `source crash: seed=${seed} killDelay=${killDelay}ms destination at CP ${destAtRestart.cp} ` +
              `when the source came back (${
                destAtRestart.cp === cp1.cp ? `CP ${cp2} sent again` : "it had committed"
              }); CP sync after restart: ${wire.cpBlocks.data} DATA blocks, ${wire.cpSyncBytes} B`,
          );
        } finally {
          await stopAll(src, dst);
        }
      }),
  );
});

Deno.test("mirror source crash: killed while a CP reuses the blocks the last one freed, it reopens", async () => {
  const seed = testSeed(0x5c2a_0002);
  await withSeed(
    seed,
    "mirror-source-reuse",
    () =>
      withTempDir("refsync-mirror-srcreuse-", async (tmp) => {
        const rng = new Prng(seed);
        const token = "source-reuse-" + crypto.randomUUID();
        const args = ["--cp-interval", "0", "--cp-dirty-bytes", "1GiB"];
        let dst: ApplianceProcess | null = null;
        let src: ApplianceProcess | null = null;
        try {
          dst = await spawnDest(`${tmp}/dest`, token);
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, args);
          const model = new Model();
          const put = async (key: string, bytes: Uint8Array) => {
            const a = await call(objectUrl(src!.url, key), {
              method: "PUT",
              body: bytes as BodyInit,
            });
            assert.equal(a.status, model.objects.has(key) ? 200 : 201, `PUT ${key}: ${a.text}`);
            model.put(key, bytes);
          };
          // CP 1: a tiny tree at the start of the volume (low block numbers).
          await put("a", rng.bytes(100));
          await adminCp(src);
          // CP 2 replaces it; once CP 2 is on both sides, CP 1's blocks are free again.
          await put("a", rng.bytes(200));
          const cp2 = await adminCp(src);
          // CP 3 is big: its first blocks land where CP 1's catalog and map nodes were.
          const big = await putRandomObject(src!.url, model, "big", rng.u32(), 48 * MiB);
          assert.equal(big.status, 201, `PUT big: ${big.status} ${big.text}`);
          const cpCall = call(
            `${src.url}/v1/admin/cp`,
            { method: "POST", headers: adminAuth(src) },
            60_000,
          ).catch((e) => e);
          const killDelay = rng.range(30, 120);
          await sleep(killDelay);
          const committed = (await statsOf(src)).cp.committed;
          await src.kill();
          src = null;
          await cpCall;

          // The source must reopen (before the fix: "catalog node at block N: not a catalog node").
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, args);
          const reopened = await digestOf(src);
          const cp3 = await adminCp(src);
          await assertSameDigest(src, dst, "after the restart");
          await verifySides(model, { source: src, destination: dst }, "after the restart");
          console.log(
            `source reuse: seed=${seed} killDelay=${killDelay}ms CP committed at the kill: ${committed} ` +
              `(CP ${cp2.cp} was the last synced; ${
                committed > cp2.cp ? "the kill came after the commit" : "the kill came mid-CP"
              }), ` +
              `reopened at CP ${reopened.cp}, next CP ${cp3.cp}`,
          );
        } finally {
          await stopAll(src, dst);
        }
      }),
  );
});

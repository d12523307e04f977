/**
 * A resync sends only what changed (real processes): a pair at CP m, the
 * destination's data directory copied while it is stopped; the pair goes on
 * to CP m+3 (new objects, rewritten ones, a delete); the destination is
 * stopped, its old copy put back and restarted on its port. The source finds
 * it at CP m of our volume and generation and resyncs from there: the walk by
 * birth CP sends the blocks born after m (about the bytes written since),
 * never the 40 MiB it already holds; blocks the source reused since are
 * written over the old copy's dead ones. After a CP the digests are equal and
 * every object reads back from both sides.
 *
 * @module
 */
import assert from "node:assert/strict";
import { copyDir, withTempDir } from "../support/appliance.ts";
import { Model } from "../support/model.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import {
  adminCp,
  assertSameDigest,
  call,
  eventually,
  logEvents,
  putRandomObject,
  spawnDest,
  spawnPair,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";
import { objectUrl } from "../support/http.ts";

const MiB = 1024 * 1024;

Deno.test("mirror resync: a destination back from an old copy gets only what changed since", async () => {
  const seed = testSeed(0x7e5c_0001);
  await withSeed(seed, "mirror-resync", () =>
    withTempDir("refsync-resync-", async (dir) => {
      const rng = new Prng(seed);
      const model = new Model();
      // CPs only when asked: the test names them.
      const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
      const { src, token } = pair;
      let dst = pair.dst;
      const port = dst.port;
      try {
        for (let i = 0; i < 40; i++) {
          const put = await putRandomObject(src.url, model, `base/${i}`, rng.int(2 ** 31), MiB);
          assert.equal(put.status, 201, put.text);
        }
        const m = (await adminCp(src)).cp;
        await dst.stop(5000);
        await copyDir(`${dir}/dest`, `${dir}/dest-at-m`);
        dst = await spawnDest(`${dir}/dest`, token, [], port);
        let changed = 0;
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 3; i++) {
            const key = `new/${round}-${i}`;
            const put = await putRandomObject(src.url, model, key, rng.int(2 ** 31), MiB);
            assert.equal(put.status, 201, put.text);
          }
          const rewrite = await putRandomObject(
            src.url,
            model,
            `base/${round}`,
            rng.int(2 ** 31),
            MiB,
          );
          assert.equal(rewrite.status, 200, rewrite.text);
          changed += 4 * MiB;
          assert.equal((await adminCp(src)).cp, m + round + 1);
        }
        const del = await call(objectUrl(src.url, "base/39"), { method: "DELETE" });
        assert.equal(del.status, 204);
        model.delete("base/39");
        await adminCp(src);
        await dst.stop(5000);
        await Deno.remove(`${dir}/dest`, { recursive: true });
        await Deno.rename(`${dir}/dest-at-m`, `${dir}/dest`);
        dst = await spawnDest(`${dir}/dest`, token, [], port);
        // A write finds the destination's log behind: the handshake that follows resyncs it.
        const after = await putRandomObject(src.url, model, "after", rng.int(2 ** 31), 64 * 1024);
        assert.equal(after.status, 201, after.text);
        changed += 64 * 1024;

        await eventually("the resync commits", async () => {
          const started = logEvents(src, "mirror.catch_up_started");
          const s = (await statsOf(src)).mirror!;
          return started.length === 1 && s.progress === null ? started[0] : undefined;
        }, { ms: 60_000, pauseMs: 100, attempts: 2_000 }).catch((e) => {
          throw new Error(
            `${e.message}\n--- source:\n${src.stderr.slice(-4000)}\n--- dest:\n${
              dst.stderr.slice(-3000)
            }`,
          );
        });
        const [started] = logEvents(src, "mirror.catch_up_started");
        assert.equal(started.kind, "resync");
        assert.equal(started.baseCp, m);
        assert.equal(started.targetCp, m + 4);
        const wire = (await statsOf(src)).wire as unknown as {
          resyncBytes: number;
          baselineBytes: number;
        };
        assert.equal(wire.baselineBytes, 0);
        assert.ok(wire.resyncBytes >= changed, `${wire.resyncBytes} bytes for ${changed} changed`);
        // The changed data blocks, their maps and the catalog path: never the 40 MiB base.
        assert.ok(
          wire.resyncBytes <= changed * 1.05 + 256 * 1024,
          `${wire.resyncBytes} bytes for ${changed} changed`,
        );
        await adminCp(src);
        await assertSameDigest(src, dst, "after the resync and a CP");
        await verifySides(model, { source: src, dest: dst }, "after the resync");
      } finally {
        await stopAll(src, dst);
      }
    }));
});

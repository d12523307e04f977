/**
 * Invariant 7 on the destination: applying a big CP does not hold the CP in
 * memory. One 128 MiB object (streamed), one CP; the destination's peak RSS
 * (VmHWM) may grow by a bounded amount while it applies the CP, not by the
 * CP's size (before the fix it grew by about twice the CP: every block stayed
 * buffered until COMMIT).
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, randomStream, testSeed, withSeed } from "../support/prng.ts";
import { withDeadline } from "../support/timeout.ts";
import { adminCp, assertSameDigest, spawnPair } from "./pair.ts";

const MiB = 1024 * 1024;
const SIZE = 128 * MiB;
/** Allowed peak growth while the CP is applied (a few 16 MiB LOG_REF runs and buffers). */
const GROWTH_LIMIT = 96 * MiB;

Deno.test("mirror dest memory: applying a 128 MiB CP does not buffer it", async () => {
  const seed = testSeed(0xde77_0001);
  await withSeed(
    seed,
    "mirror-dest-memory",
    () =>
      withTempDir("refsync-mirror-destmem-", async (tmp) => {
        const pair = await spawnPair(tmp, {
          sourceArgs: ["--cp-interval", "0", "--cp-dirty-bytes", "1GiB"],
        });
        try {
          const status = await withDeadline(120_000, async (signal) => {
            const res = await fetch(objectUrl(pair.src.url, "big"), {
              method: "PUT",
              body: randomStream(new Prng(seed).u32(), SIZE, MiB),
              signal,
              // @ts-ignore: Deno streams request bodies with duplex "half"
              duplex: "half",
            });
            await res.body?.cancel();
            return res.status;
          });
          assert.equal(status, 201);
          const before = pair.dst.memory().peakRss;
          await adminCp(pair.src);
          const after = pair.dst.memory().peakRss;
          await assertSameDigest(pair.src, pair.dst, "after the big CP");
          const growth = after - before;
          console.log(
            `dest memory: peak RSS ${Math.round(before / MiB)} MiB before the ${
              SIZE / MiB
            } MiB CP, ` +
              `${Math.round(after / MiB)} MiB after (+${Math.round(growth / MiB)} MiB)`,
          );
          assert.ok(
            growth < GROWTH_LIMIT,
            `the destination's peak RSS grew by ${Math.round(growth / MiB)} MiB applying a ${
              SIZE / MiB
            } MiB CP (limit ${GROWTH_LIMIT / MiB} MiB): the CP is buffered in memory`,
          );
        } finally {
          await pair.stop();
        }
      }),
  );
});

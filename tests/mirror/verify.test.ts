/**
 * The online verify and repair of a real pair (`POST /v1/admin/verify`):
 *
 * - a byte flipped in a data block of the destination's `volume.dat` (stopped):
 *   a GET of that object there is never a good 200; verify reports exactly that
 *   block with its key; `?repair=true` mends it (`repaired: 1`); a second verify
 *   finds none and the destination serves the right bytes;
 * - a block damaged on the source is reported in `sourceDamaged` and never sent;
 * - under load (PUTs in a loop while CPs commit, `--verify-interval` running too)
 *   verify never reports a mismatch.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { VerifyResult } from "../../src/edge-source/mirror/verify.ts";
import { adminAuth, type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { damageFileBlock as damage, flipBit, mapBlocksOf } from "../support/datadir.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, seeded } from "../support/prng.ts";
import {
  adminCp,
  call,
  callJson,
  eventually,
  logEvents,
  mirrorOf,
  spawnDest,
  spawnMirroredSource,
  spawnPair,
  statsOf,
  stopAll,
} from "./pair.ts";

const MiB = 1 << 20;

async function verify(src: ApplianceProcess, repair = false): Promise<VerifyResult> {
  const a = await callJson<VerifyResult>(
    `${src.url}/v1/admin/verify${repair ? "?repair=true" : ""}`,
    { method: "POST", headers: adminAuth(src) },
    120_000,
  );
  assert.equal(a.status, 200, `POST /v1/admin/verify: ${a.status} ${a.text.slice(0, 500)}`);
  return a.json;
}

async function connected(src: ApplianceProcess): Promise<void> {
  await eventually(
    "the source reconnects",
    async () => (await mirrorOf(src)).connected || undefined,
  );
}

Deno.test(
  "verify: a damaged destination block is found with its key, repaired, and served right again",
  seeded(0x5e1f, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir("refsync-verify-", async (tmp) => {
      const token = "verify-" + crypto.randomUUID();
      const objects = {
        small: rng.bytes(20_000),
        big: rng.bytes(2 * MiB),
        intact: rng.bytes(32 * 1024),
      };
      let dst: ApplianceProcess | null = null;
      let src: ApplianceProcess | null = null;
      try {
        dst = await spawnDest(`${tmp}/dest`, token);
        const port = dst.port;
        src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, ["--cp-interval", "0"]);
        for (const [key, bytes] of Object.entries(objects)) {
          const a = await call(objectUrl(src.url, key), { method: "PUT", body: bytes as BodyInit });
          assert.equal(a.status, 201, `PUT ${key}: ${a.text}`);
        }
        const { cp } = await adminCp(src);
        const noToken = await call(`${src.url}/v1/admin/verify`, { method: "POST" });
        assert.equal(noToken.status, 401);
        const clean = await verify(src);
        assert.deepEqual(
          { ...clean, blocksCompared: clean.blocksCompared > 512 + 5 + 8, durationMs: 0 },
          {
            cp,
            durationMs: 0,
            blocksCompared: true,
            mismatches: [],
            mismatchCount: 0,
            repaired: 0,
            sourceDamaged: [],
          },
        );

        await dst.stop(10_000);
        const bad = damage(`${tmp}/dest`, objects.small, 3);
        dst = await spawnDest(`${tmp}/dest`, token, [], port);
        await connected(src);
        const get = await call(objectUrl(dst.url, "small"));
        assert.equal(get.status, 500, `a damaged block is never a good 200: ${get.status}`);
        assert.equal(JSON.parse(get.text).error, "corrupt");

        const found = await verify(src);
        assert.equal(found.cp, cp);
        assert.equal(found.blocksCompared, clean.blocksCompared);
        assert.deepEqual(found.mismatches, [{ block: bad, key: "small", kind: "damaged" }]);
        assert.equal(found.repaired, 0, "a verify without repair writes nothing");
        assert.equal((await call(objectUrl(dst.url, "small"))).status, 500);

        const mended = await verify(src, true);
        assert.deepEqual(
          [mended.mismatches, mended.repaired],
          [[{ block: bad, key: "small", kind: "damaged" }], 1],
        );
        const again = await verify(src);
        assert.deepEqual([again.mismatches, again.repaired], [[], 0]);
        const read = await call(objectUrl(dst.url, "small"));
        assert.equal(read.status, 200);
        assert.deepEqual(read.bytes, objects.small, "the destination serves the right bytes");
        const finished = logEvents(src, "verify.finished");
        assert.deepEqual(
          finished.map((l) => [l.cp, l.mismatches, l.repaired]),
          [[cp, 0, 0], [cp, 1, 0], [cp, 1, 1], [cp, 0, 0]],
        );
        const stats = await statsOf(src);
        assert.equal(
          (stats.mirror!.verify as VerifyResult).cp,
          cp,
          "the stats keep the last result",
        );

        // A damaged map block: the destination still starts; the blocks under it cannot be reached
        // there (missing), and mending the map block alone brings them back.
        await dst.stop(10_000);
        const maps = mapBlocksOf(`${tmp}/dest`, 1);
        assert.equal(maps.length, 3, `level-1 map blocks of 'big' (512 blocks): ${maps}`);
        flipBit(`${tmp}/dest/volume.dat`, maps[0] * 4096 + 100, 3);
        dst = await spawnDest(`${tmp}/dest`, token, [], port);
        await connected(src);
        const mapGet = await call(objectUrl(dst.url, "big"));
        assert.equal(
          mapGet.status,
          500,
          `a damaged map block is never a good 200: ${mapGet.status}`,
        );
        const mapFound = await verify(src, true);
        const missing = mapFound.mismatches.filter((m) => m.kind === "missing");
        assert.deepEqual(
          mapFound.mismatches.filter((m) => m.kind !== "missing"),
          [{ block: maps[0], key: "big", kind: "damaged" }],
        );
        assert.ok(
          missing.length === 255 && missing.every((m) => m.key === "big"),
          `${missing.length}`,
        );
        assert.equal(mapFound.repaired, 1, "the map block; the blocks under it need nothing");
        assert.deepEqual(logEvents(src, "verify.repair_refused"), [], "nothing sent was refused");
        assert.ok(
          logEvents(dst, "store.corrupt_block").some((l) => l.block === maps[0] && l.at === "open"),
          "the destination logged the damaged map block when it opened",
        );
        const mapAgain = await verify(src);
        assert.deepEqual([mapAgain.mismatches, mapAgain.blocksCompared], [
          [],
          clean.blocksCompared,
        ]);
        const big = await call(objectUrl(dst.url, "big"));
        assert.deepEqual([big.status, big.bytes], [200, objects.big]);

        // A block damaged on the source: reported as the source's, never sent over the good one.
        await src.stop(10_000);
        const srcBad = damage(`${tmp}/source`, objects.intact, 2);
        src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, ["--cp-interval", "0"]);
        await connected(src);
        const srcDamaged = await verify(src, true);
        assert.deepEqual(
          [srcDamaged.sourceDamaged, srcDamaged.mismatches, srcDamaged.repaired],
          [[{ block: srcBad, key: "intact" }], [], 0],
        );
        const intact = await call(objectUrl(dst.url, "intact"));
        assert.deepEqual([intact.status, intact.bytes], [200, objects.intact]);
      } finally {
        await stopAll(src, dst);
      }
    });
  }),
);

Deno.test(
  "verify: a pair under load, CPs committing meanwhile, never reports a mismatch",
  seeded(0x10ad, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir("refsync-verify-load-", async (tmp) => {
      const pair = await spawnPair(tmp, {
        sourceArgs: ["--cp-interval", "100", "--verify-interval", "400ms"],
      });
      const { src } = pair;
      // A volume big enough that a verify takes a while: CPs commit while it runs.
      for (let i = 0; i < 8; i++) {
        const a = await call(objectUrl(src.url, `base${i}`), {
          method: "PUT",
          body: rng.bytes(8 * MiB) as BodyInit,
        });
        assert.equal(a.status, 201, `PUT base${i}: ${a.text}`);
      }
      let writing = true;
      let puts = 0;
      const writer = (async () => {
        // Bounded: at most 400 PUTs, and it stops once the verifies are done.
        for (let i = 0; i < 400 && writing; i++) {
          const bytes = rng.bytes(4096 * (1 + rng.int(48)) + rng.int(4096));
          const a = await call(objectUrl(src.url, `k${rng.int(24)}`), {
            method: "PUT",
            body: bytes as BodyInit,
          });
          assert.ok(a.status === 200 || a.status === 201, `PUT: ${a.status} ${a.text}`);
          puts++;
        }
      })();
      try {
        await eventually("a few PUTs", () => Promise.resolve(puts >= 10 || undefined));
        const cps = new Set<number>();
        for (let i = 0; i < 8; i++) {
          const r = await verify(src, i % 2 === 1);
          assert.deepEqual(
            [r.mismatches, r.sourceDamaged, r.repaired],
            [[], [], 0],
            `verify ${i} at CP ${r.cp} under load`,
          );
          assert.ok(r.blocksCompared > 0);
          cps.add(r.cp);
        }
        writing = false;
        await writer;
        assert.ok(cps.size >= 3, `CPs committed while verifying: compared ${[...cps]}`);
        // The schedule ran too, with the same outcome.
        const scheduled = await eventually("two scheduled verifies", () => {
          const lines = logEvents(src, "verify.finished").filter((l) => l.scheduled === true);
          return Promise.resolve(lines.length >= 2 ? lines : undefined);
        });
        assert.deepEqual(
          scheduled.map((l) => l.mismatches),
          [0, 0].concat(scheduled.slice(2).map(() => 0)),
        );
        assert.equal(((await statsOf(src)).mirror!.verify as VerifyResult).mismatches.length, 0);
        assert.deepEqual(logEvents(src, "verify.failed"), []);
      } finally {
        writing = false;
        await writer.catch(() => {});
        await pair.stop();
      }
    });
  }),
);

/**
 * Issue 8 item 1: readers must never stop space reclamation. A pair of real
 * processes overwrites a 32 MiB object and takes a CP, 8 times, while every
 * kind of reader hits both sides: HEAD (which reads no body), a full GET, a
 * GET the client abandons after its first bytes, and a GET whose client stops
 * reading and keeps the connection open. Each reader's pin on its CP must end
 * (with the response, the abort, or after `--body-idle-timeout` without
 * progress), so the volumes stay under 4x the object and the logs under
 * 160 MiB on both sides. Before the fix a single HEAD pinned its CP for ever.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { testSeed, withSeed } from "../support/prng.ts";
import { withDeadline } from "../support/timeout.ts";
import { adminCp, call, putRandomObject, spawnPair, statsOf } from "./pair.ts";
import { Model } from "../support/model.ts";

const MiB = 1 << 20;
const OBJECT = 32 * MiB;
const CYCLES = 8;

/** Bytes of the files directly in `dir`. */
function filesBytes(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) if (e.isFile) n += Deno.statSync(`${dir}/${e.name}`).size;
  return n;
}

/** A GET whose client reads the first chunk of the body, then abandons it. */
async function abandonedGet(url: string): Promise<void> {
  await withDeadline(30_000, async (signal) => {
    const res = await fetch(url, { signal });
    assert.equal(res.status, 200, `GET ${url}: ${res.status}`);
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0, "the body starts");
    await reader.cancel();
  });
}

/**
 * A GET whose client reads nothing and keeps the connection open (a stalled
 * or vanished client): the server can send only what the socket buffers hold.
 */
async function stalledGet(port: number, path: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`));
  return conn;
}

Deno.test("read pins: HEAD/GET-heavy overwrite loop keeps volumes and logs bounded on both sides", async () => {
  const seed = testSeed(0x9e4d);
  await withSeed(seed, "read-pins", () =>
    withTempDir("refsync-pins-", async (dir) => {
      const flags = ["--cp-interval", "0", "--body-idle-timeout", "1000"];
      const pair = await spawnPair(dir, { sourceArgs: flags, destArgs: flags });
      const stalled: Deno.TcpConn[] = [];
      try {
        const model = new Model();
        const sides: ApplianceProcess[] = [pair.src, pair.dst];
        let gets = 0;
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          const put = await putRandomObject(pair.src.url, model, "big", seed + cycle, OBJECT);
          assert.equal(put.status, cycle === 0 ? 201 : 200, `PUT #${cycle}: ${put.text}`);
          await adminCp(pair.src);
          for (const side of sides) {
            const url = objectUrl(side.url, "big");
            const head = await call(url, { method: "HEAD" });
            assert.equal(head.status, 200, `HEAD #${cycle}`);
            assert.equal(head.headers.get("Content-Length"), String(OBJECT));
            assert.equal(head.headers.get("ETag"), `"${put.etag}"`, `HEAD #${cycle} ETag`);
            assert.equal(head.bytes.length, 0, "HEAD has no body");
            const full = await call(url, {}, 60_000);
            assert.equal(full.status, 200);
            assert.equal(full.bytes.length, OBJECT);
            await abandonedGet(url);
            if (cycle === 0) stalled.push(await stalledGet(side.port, "/v1/objects/big"));
          }
          gets += cycle === 0 ? 3 : 2;
        }
        // One more CP frees what the last overwrite replaced, once no reader holds it.
        await putRandomObject(pair.src.url, model, "big", seed + CYCLES, OBJECT);
        await adminCp(pair.src);
        for (const side of sides) {
          const volume = Deno.statSync(`${side.dataDir}/volume.dat`).size;
          const log = filesBytes(`${side.dataDir}/log`);
          assert.ok(
            volume < 4 * OBJECT,
            `${side.dataDir}: volume.dat is ${(volume / MiB).toFixed(1)} MiB, want < ${
              4 * OBJECT / MiB
            } MiB (a reader keeps what CPs replaced)`,
          );
          assert.ok(
            log < 160 * MiB,
            `${side.dataDir}: the log holds ${(log / MiB).toFixed(1)} MiB, want < 160 MiB`,
          );
          // HEAD is not a GET: the counters count only bodies served.
          const stats = await statsOf(side);
          const client = stats.client as { gets: number; heads: number };
          assert.equal(client.heads, CYCLES, `${side.dataDir}: HEADs counted`);
          assert.equal(client.gets, gets, `${side.dataDir}: GETs counted (HEAD is not one)`);
          // The stalled reader's pin was released after --body-idle-timeout, and said so.
          assert.match(side.stderr, /"event":"store\.read_abandoned"/, "the release is logged");
        }
      } finally {
        for (const c of stalled) c.close();
        await pair.stop();
      }
    }));
});

/**
 * Memory is bounded by configuration, not by object size (invariant 7 of
 * docs/internals.md): a 1 GiB streamed PUT into a source running with default flags (64 MiB
 * CP threshold), then a streamed GET of it, keep the source's peak RSS
 * (VmHWM, /proc/<pid>/status) under 300 MiB. Neither side ever holds the
 * object: the body is generated chunk by chunk and the read-back is compared
 * chunk by chunk against the regenerated sequence, with an independent
 * BLAKE3 computed while streaming checked against the ETag.
 *
 * `REFSYNC_MEMORY_TEST_MIB` changes the size (e.g. 128 for a quick run).
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSource, withTempDir } from "../support/appliance.ts";
import { etagValue, StreamingEtag } from "../support/blake3.ts";
import { compareWithRandom, randomStream, testSeed, withSeed } from "../support/prng.ts";
import { streamingPut } from "../support/http.ts";
import { withDeadline } from "../support/timeout.ts";

const MiB = 1 << 20;
const SIZE = Number(Deno.env.get("REFSYNC_MEMORY_TEST_MIB") ?? 1024) * MiB;
const PEAK_RSS_LIMIT = 300 * MiB;
const CHUNK = 1 * MiB;

Deno.test("memory: a 1 GiB streamed PUT and GET keep the source under 300 MiB RSS", async () => {
  const seed = testSeed(0x1ee7);
  await withSeed(seed, "memory", () =>
    withTempDir("refsync-memory-", async (dir) => {
      const src = await spawnSource(dir); // default flags: --cp-dirty-bytes 64MiB
      try {
        const baseline = src.memory();
        const t0 = performance.now();

        // PUT: a pull-based pseudo-random stream, hashed as it is sent, over a
        // raw HTTP/1.1 connection with Content-Length (REFSYNC_MEMORY_TEST_CHUNKED=1:
        // chunked instead; Deno's server decodes big chunked bodies slowly, see the report).
        const sent = new StreamingEtag();
        const chunked = Deno.env.get("REFSYNC_MEMORY_TEST_CHUNKED") === "1";
        const put = await withDeadline(240_000, async (signal) => {
          const a = await streamingPut(
            src.port,
            "/v1/objects/big",
            randomStream(seed, SIZE, CHUNK, (c) => sent.update(c)),
            {
              length: chunked ? undefined : SIZE,
              signal,
            },
          );
          return { status: a.status, json: JSON.parse(a.text), etag: a.headers.get("ETag") };
        });
        const tPut = performance.now();
        assert.equal(put.status, 201, JSON.stringify(put.json));
        assert.equal(sent.bytes, SIZE);
        assert.equal(put.json.size, SIZE);
        const expectedEtag = sent.hex();
        assert.equal(put.json.etag, expectedEtag, "PUT etag is that of the body");
        assert.equal(etagValue(put.etag), expectedEtag, "PUT ETag header");
        const afterPut = src.memory();

        // GET: streamed, compared chunk by chunk, hashed while streaming.
        const received = new StreamingEtag();
        const got = await withDeadline(240_000, async (signal) => {
          const res = await fetch(`${src.url}/v1/objects/big`, { signal });
          assert.equal(res.status, 200);
          assert.equal(res.headers.get("Content-Length"), String(SIZE));
          const etag = res.headers.get("ETag");
          const n = await compareWithRandom(
            res.body!,
            seed,
            SIZE,
            CHUNK,
            (c) => received.update(c),
          );
          return { n, etag };
        });
        const tGet = performance.now();
        assert.equal(got.n, SIZE);
        assert.equal(received.hex(), expectedEtag, "BLAKE3 of the GET body");
        assert.equal(etagValue(got.etag), expectedEtag, "GET ETag header");

        const end = src.memory();
        const cpu = src.cpu();
        const stats = await (await fetch(`${src.url}/v1/admin/stats`)).json();
        const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
        console.log(
          `memory: ${mib(SIZE)} PUT ${((tPut - t0) / 1000).toFixed(1)} s, GET ${
            ((tGet - tPut) / 1000).toFixed(1)
          } s; ` +
            `source RSS at start ${mib(baseline.rss)}, after PUT ${mib(afterPut.rss)}, ` +
            `peak (VmHWM) ${
              mib(end.peakRss)
            }; CPU user ${cpu.userMs} ms, system ${cpu.systemMs} ms; ` +
            `CPs committed ${stats.cp.committed}`,
        );
        assert.ok(
          end.peakRss < PEAK_RSS_LIMIT,
          `source peak RSS ${mib(end.peakRss)} is over ${mib(PEAK_RSS_LIMIT)} for a ${
            mib(SIZE)
          } object`,
        );
      } finally {
        await src.kill();
      }
    }));
});

/**
 * Link compression between real appliance processes, through a proxy on
 * 127.0.0.1 that loses one log request on the way and the answer to another:
 * writes go on, no request is refused as out of order (the source opens a new
 * epoch after each failure), text travels compressed (log and CP sync),
 * random data raw, and the digests agree.
 */
import assert from "node:assert/strict";
import {
  adminCp,
  assertSameDigest,
  call,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  wireDelta,
} from "./pair.ts";
import { putObject } from "../support/http.ts";
import { type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { Prng } from "../../src/runtime/random.ts";

/** What the proxy saw of one `POST /v1/repl/log`. */
interface Seen {
  epoch: string | null;
  seq: string | null;
  encoding: string | null;
  /** The destination's status, or "lost" (never forwarded) / "answer lost" (forwarded). */
  fate: number | "lost" | "answer lost";
}

/** A proxy to `target` that loses log request number `loseRequest` and the answer to `loseAnswer`. */
function lossyProxy(target: string, loseRequest: number, loseAnswer: number) {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.method === "GET" ? undefined : new Uint8Array(await req.arrayBuffer());
    const log = url.pathname === "/v1/repl/log";
    const n = log ? seen.length + 1 : 0;
    const entry: Seen | null = log
      ? {
        epoch: req.headers.get("Refsync-Link"),
        seq: req.headers.get("Refsync-Seq"),
        encoding: req.headers.get("Content-Encoding"),
        fate: "lost",
      }
      : null;
    if (entry) seen.push(entry);
    const gone = () =>
      Response.json({ error: "unavailable", message: "proxy lost it (test)" }, { status: 502 });
    if (n === loseRequest) return gone();
    const res = await fetch(new URL(url.pathname + url.search, target), {
      method: req.method,
      headers: req.headers,
      body,
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (entry) entry.fate = n === loseAnswer ? "answer lost" : res.status;
    if (n === loseAnswer) return gone();
    return new Response(bytes, { status: res.status, headers: res.headers });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

/** Text like source code and logs (compressible), deterministic. */
function text(rng: Prng, bytes: number): string {
  const words = [
    "const",
    "return",
    "await",
    "store",
    "block",
    "frame",
    "digest",
    "mirror",
    "{",
    "}",
  ];
  let s = "";
  while (s.length < bytes) {
    s += `${rng.pick(words)} ${rng.pick(words)}_${rng.int(100)} = ${rng.int(1_000_000)};\n`;
  }
  return s.slice(0, bytes);
}

Deno.test("link compression (real pair): a lost request and a lost answer, then compressed and raw traffic", async () => {
  await withTempDir("refsync-link-zstd-", async (dir) => {
    const token = "link-token-" + crypto.randomUUID();
    let dst: ApplianceProcess | null = null;
    let src: ApplianceProcess | null = null;
    const dest = await spawnDest(`${dir}/dest`, token);
    dst = dest;
    const proxy = lossyProxy(dest.url, 3, 6);
    try {
      src = await spawnMirroredSource(`${dir}/source`, proxy.url, token, [
        "--cp-interval",
        "0",
        "--cp-sync",
        "full", // every CP block as DATA: the CP sync parts carry the text too
        "--dest-log-port",
        "off", // the proxy loses HTTP requests: log batches go as such, not on the log stream
      ]);
      const rng = new Prng(0x2323);
      const before = (await statsOf(src)).wire;
      for (let i = 0; i < 12; i++) {
        const put = await putObject(src.url, `text/${i}`, text(rng, 20_000 + 3000 * i));
        assert.equal(put.status, 201, `PUT text/${i}: ${JSON.stringify(put.json)}`);
      }
      await adminCp(src);
      await assertSameDigest(src, dest, "after the text");
      const t = wireDelta(before, (await statsOf(src)).wire);
      assert.ok(t.logBytes < 0.5 * t.logBytesRaw, `log: ${JSON.stringify(t)}`);
      assert.ok(t.cpSyncBytes < 0.5 * t.cpSyncBytesRaw, `CP sync: ${JSON.stringify(t)}`);

      // The failures: each was followed by a new epoch, and nothing was refused as out of order.
      const fates = proxy.seen.map((s) => s.fate);
      assert.equal(fates[2], "lost", JSON.stringify(proxy.seen));
      assert.equal(fates[5], "answer lost", JSON.stringify(proxy.seen));
      assert.ok(
        proxy.seen.every((s) => s.fate !== 409),
        `no request refused: ${JSON.stringify(proxy.seen)}`,
      );
      for (const failed of [2, 5]) {
        const next = proxy.seen.slice(failed + 1).find((s) => s.encoding === "zstd");
        assert.ok(next, `a compressed request after failure ${failed}`);
        assert.equal(next.seq, "0", `a new epoch after ${failed}: ${JSON.stringify(proxy.seen)}`);
        assert.notEqual(next.epoch, proxy.seen[failed].epoch);
      }

      // Random data: raw, no more bytes than it has (and its frame headers).
      const mid = (await statsOf(src)).wire;
      for (let i = 0; i < 4; i++) {
        const put = await putObject(src.url, `random/${i}`, rng.fill(new Uint8Array(1 << 20)));
        assert.equal(put.status, 201);
      }
      await adminCp(src);
      await assertSameDigest(src, dest, "after the random data");
      const r = wireDelta(mid, (await statsOf(src)).wire);
      assert.ok(r.logBytes <= 1.01 * r.logBytesRaw, `random log: ${JSON.stringify(r)}`);
      assert.ok(r.cpSyncBytes <= 1.01 * r.cpSyncBytesRaw, `random CP sync: ${JSON.stringify(r)}`);
      const got = await call(`${dest.url}/v1/objects/text/11`);
      assert.equal(got.status, 200);
    } finally {
      await stopAll(src, dst);
      await proxy.close();
    }
  });
});

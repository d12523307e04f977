import assert from "node:assert/strict";
import { spawnNaive } from "../support/appliance.ts";
import { fillXorshift } from "../../bench/lib/prng.ts";
import { withTempDir } from "../support/appliance.ts";

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  fillXorshift(b, seed);
  return b;
}

async function put(url: string, key: string, body: Uint8Array<ArrayBuffer>, range?: string) {
  const res = await fetch(`${url}/v1/objects/${key}`, {
    method: "PUT",
    body,
    headers: range ? { "content-range": range } : {},
  });
  return { status: res.status, json: await res.json() };
}

async function stats(url: string) {
  const res = await fetch(`${url}/v1/admin/stats`);
  return await res.json();
}

Deno.test("naive mirror: a PUT is answered once both logs hold its body; 503 without the destination", async () => {
  await withTempDir("refsync-naive-", async (dir) => {
    const dest = await spawnNaive("dest", `${dir}/dest`, null);
    const source = await spawnNaive("source", `${dir}/source`, dest.url).catch(async (e) => {
      await dest.stop();
      throw e;
    });
    try {
      assert.match(source.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      let expected = new Uint8Array(0);
      const bodies = [bytes(1, 1), bytes(4096, 2), bytes(100_000, 3), bytes(2 ** 20 + 5, 4)];
      for (const [i, body] of bodies.entries()) {
        const range = i === 2 ? `bytes 10-${10 + body.length - 1}/*` : undefined;
        const { status, json } = await put(source.url, `k${i}`, body, range);
        assert.equal(status, 201);
        assert.equal(json.size, body.length);
        const grown = new Uint8Array(expected.length + body.length);
        grown.set(expected);
        grown.set(body, expected.length);
        expected = grown;
        // Answered: both sides already hold every byte acknowledged so far, in order.
        assert.deepEqual(await Deno.readFile(`${dir}/source/log`), expected, `source after ${i}`);
        assert.deepEqual(await Deno.readFile(`${dir}/dest/log`), expected, `dest after ${i}`);
      }
      // Concurrent PUTs: nothing lost or interleaved (appends are serialized), on both sides.
      const more = Array.from({ length: 8 }, (_, i) => bytes(30_000 + i, 10 + i));
      const answers = await Promise.all(more.map((b, i) => put(source.url, `c${i}`, b)));
      assert.deepEqual(answers.map((a) => a.status), Array(8).fill(201));
      const total = expected.length + more.reduce((a, b) => a + b.length, 0);
      for (const side of ["source", "dest"]) {
        const log = await Deno.readFile(`${dir}/${side}/log`);
        assert.equal(log.length, total, side);
        const text = new TextDecoder("latin1").decode(log.subarray(expected.length));
        for (const b of more) {
          assert.ok(
            text.includes(new TextDecoder("latin1").decode(b)),
            `${side} holds each body whole`,
          );
        }
      }
      const [s, d] = [await stats(source.url), await stats(dest.url)];
      assert.equal(s.client.bytesWritten, total);
      assert.equal(s.wire.logBytes, total);
      assert.equal(d.wire.logBytes, total);
      assert.equal(d.durableBytes, total);

      // Without its destination the source acknowledges nothing.
      const stopped = await dest.stop();
      assert.equal(stopped.graceful, true);
      assert.equal(stopped.status.code, 0);
      const refused = await put(source.url, "late", bytes(100, 99));
      assert.equal(refused.status, 503);
      assert.equal(refused.json.error, "unavailable");
      assert.equal((await stats(source.url)).client.bytesWritten, total);
    } finally {
      await source.stop();
      if (!dest.exited) await dest.stop();
    }
  });
});

/**
 * The log stream's format without a socket: messages read back as written
 * through a reader that buffers small reads and passes big ones straight on,
 * whatever the chunks the connection delivers.
 */
import assert from "node:assert/strict";
import { concatBytes } from "../../src/bytes/mod.ts";
import {
  BufferedReader,
  encodeAnswer,
  encodeRequestHead,
  InOrder,
  readAnswer,
  readExactly,
  readRequest,
  type StreamReader,
} from "../../src/protocol/log-stream/mod.ts";
import { Prng } from "../../src/runtime/random.ts";

/** A connection that hands out `bytes` in chunks of pseudo-random sizes (1 B to 200 KiB). */
function chunked(bytes: Uint8Array, seed: number): StreamReader & { reads: number } {
  const rng = new Prng(seed);
  let at = 0;
  const r = {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      r.reads++;
      if (at === bytes.length) return Promise.resolve(null);
      const n = Math.min(p.length, bytes.length - at, 1 + rng.int(200 << 10));
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  return r;
}

Deno.test("log stream format: requests read back whole through the buffered reader, big and small", async () => {
  const rng = new Prng(0x10c5);
  const bodies = [0, 1, 700, 65_535, 65_536, 300_000, 2 << 20, 5].map((n) => rng.bytes(n));
  const wire = concatBytes(bodies.flatMap((b, i) => {
    const head = encodeRequestHead(
      "POST",
      "/v1/repl/log",
      new Headers({ "x-n": String(i) }),
      b.length,
    );
    return [head, b];
  }));
  for (const seed of [1, 2, 3]) {
    const conn = chunked(wire, seed);
    const reader = new BufferedReader(conn);
    for (const [i, b] of bodies.entries()) {
      const m = (await readRequest(reader))!;
      assert.equal(m.line, "POST /v1/repl/log");
      assert.equal(m.headers.get("x-n"), String(i));
      assert.deepEqual(m.body, b, `body ${i} (seed ${seed})`);
    }
    assert.equal(await readRequest(reader), null, "a clean end between requests");
  }
});

Deno.test("log stream format: an answer reads back; a stream ending inside a message is an error", async () => {
  const body = new TextEncoder().encode('{"lastLsn":7}');
  const answer = encodeAnswer(409, new Headers({ "content-type": "application/json" }), body);
  const got = await readAnswer(new BufferedReader(chunked(answer, 4)));
  assert.equal(got.line, "409");
  assert.equal(got.headers.get("content-type"), "application/json");
  assert.deepEqual(got.body, body);
  const cut = answer.subarray(0, answer.length - 3);
  await assert.rejects(
    () => readAnswer(new BufferedReader(chunked(cut, 5))),
    /ended 10 bytes into/,
  );
  await assert.rejects(() => readExactly(chunked(new Uint8Array(3), 6), 4), /ended 3 bytes into/);
});

Deno.test("log stream: InOrder answers in call order, a later request sent meanwhile; a failed stage fails its own request only", async () => {
  const order = new InOrder();
  const events: string[] = [];
  const later = (ms: number, what: string) =>
    new Promise<string>((r) => setTimeout(() => (events.push(what), r(what)), ms));
  const a = order.run(() => later(5, "sent a"), () => later(20, "answered a"));
  const b = order.run(() => later(1, "sent b"), () => later(1, "answered b"));
  const c = order.run(() => Promise.reject(new Error("c lost")), () => later(1, "answered c"));
  const d = order.run(() => later(1, "sent d"), () => later(1, "answered d"));
  const outcomes = await Promise.allSettled([a, b, c, d]);
  assert.deepEqual(outcomes.map((o) => o.status), [
    "fulfilled",
    "fulfilled",
    "rejected",
    "fulfilled",
  ]);
  assert.deepEqual(events, [
    "sent a",
    "sent b",
    "sent d",
    "answered a",
    "answered b",
    "answered d",
  ]);
});

/**
 * Link compression, encoder against decoder: one zstd stream per epoch across
 * requests, requests only in sequence, raw for what does not compress,
 * refusals of bodies that do not decode.
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { isError } from "../../../src/errors/mod.ts";
import {
  type EncodedBody,
  LINK_HEADER,
  LinkDecoder,
  LinkEncoder,
  RAW_LENGTH_HEADER,
  SEQ_HEADER,
} from "../../../src/protocol/link-compress/mod.ts";
import { Prng } from "../../../src/runtime/random.ts";
import { ZstdContext, ZstdFlush } from "../../../src/protocol/link-compress/zstd.ts";

/** Decodes one encoded request; `wire` gets the bytes received. */
async function decode(
  dec: LinkDecoder,
  e: EncodedBody,
  wire = { bytes: 0 },
  maxBytes = 64 << 20,
): Promise<Uint8Array> {
  const body = dec.decode(new Headers(e.headers), new Response(e.body).body, {
    maxBytes,
    received: (n) => wire.bytes += n,
  });
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** A JSON log line, as an application writes them (deterministic). */
function logLine(rng: Prng, i: number): Uint8Array<ArrayBuffer> {
  const levels = ["info", "warn", "debug"];
  return new TextEncoder().encode(
    JSON.stringify({
      ts: 1_700_000_000_000 + i * 37,
      level: levels[rng.u32() % 3],
      event: "request.done",
      path: `/v1/objects/bucket/key-${rng.u32() % 1000}`,
      status: 200,
      ms: rng.u32() % 500,
    }) + "\n",
  );
}

/** Offers `e` to `dec` without reading its body (a refusal throws at once). */
function offer(dec: LinkDecoder, e: EncodedBody): ReadableStream<Uint8Array> | null {
  return dec.decode(new Headers(e.headers), new Response(e.body).body, {
    maxBytes: 1 << 20,
    received: () => {},
  });
}

const isOutOfOrder = (e: unknown) =>
  isError(e, "conflict") && /link stream out of order; reconnect/.test((e as Error).message);

Deno.test("link compression: 300 small requests share one context and decode in order", async () => {
  const rng = new Prng(11);
  const enc = new LinkEncoder({ random: new Prng(1) });
  const dec = new LinkDecoder();
  try {
    let raw = 0;
    let sent = 0;
    let alone = 0;
    for (let i = 0; i < 300; i++) {
      const record = logLine(rng, i);
      const e = await enc.stream(record);
      assert.equal(e.headers["Content-Encoding"], "zstd");
      assert.equal(e.headers[SEQ_HEADER], String(i));
      assert.deepEqual(await decode(dec, e), record, `request ${i}`);
      raw += record.length;
      sent += e.body.length;
      alone += zlib.zstdCompressSync(record).length;
    }
    // Each record alone barely compresses; against the epoch's history it does.
    assert.ok(alone > 0.8 * raw, `alone ${alone} of ${raw}`);
    assert.ok(sent < 0.5 * raw, `shared stream: ${sent} bytes for ${raw}`);
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a gap or a repeat is refused, and a new epoch recovers", async () => {
  const rng = new Prng(12);
  const enc = new LinkEncoder({ random: new Prng(2) });
  const dec = new LinkDecoder();
  try {
    const first = await enc.stream(logLine(rng, 0));
    await decode(dec, first);
    const lost = await enc.stream(logLine(rng, 1)); // never delivered
    const after = await enc.stream(logLine(rng, 2));
    assert.equal(lost.headers[LINK_HEADER], after.headers[LINK_HEADER]);
    assert.throws(() => offer(dec, after), isOutOfOrder, "a gap");
    await decode(dec, lost); // the lost one arrives after all: the stream goes on
    assert.throws(() => offer(dec, lost), isOutOfOrder, "a repeat");
    const record = logLine(rng, 3);
    enc.restart();
    const fresh = await enc.stream(record);
    assert.notEqual(fresh.headers[LINK_HEADER], first.headers[LINK_HEADER], "a new epoch id");
    assert.equal(fresh.headers[SEQ_HEADER], "0");
    assert.deepEqual(await decode(dec, fresh), record);
  } finally {
    enc.close();
  }
});

Deno.test("link compression: random data goes raw, within 1.01x of its bytes", async () => {
  const enc = new LinkEncoder({ random: new Prng(3) });
  const dec = new LinkDecoder();
  try {
    const rng = new Prng(13);
    for (const size of [64 << 10, 1 << 20, 4 << 20]) {
      const bytes = rng.bytes(size);
      for (const e of [await enc.stream(bytes), await enc.single(bytes)]) {
        const wire = { bytes: 0 };
        assert.deepEqual(await decode(dec, e, wire), bytes);
        assert.equal(e.headers["Content-Encoding"], "identity", `${size} bytes`);
        assert.ok(wire.bytes <= 1.01 * size, `${wire.bytes} wire bytes for ${size}`);
      }
    }
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a compressible CP part goes as one frame, decoded alone", async () => {
  const rng = new Prng(14);
  const lines: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  for (let i = 0; size < 4 << 20; i++) {
    lines.push(logLine(rng, i));
    size += lines[i].length;
  }
  const part = new Uint8Array(await new Blob(lines).arrayBuffer());
  const enc = new LinkEncoder({ random: new Prng(4) });
  try {
    const e = await enc.single(part);
    assert.equal(e.headers["Content-Encoding"], "zstd");
    assert.equal(e.headers[LINK_HEADER], undefined, "a part belongs to no epoch");
    assert.ok(e.body.length < 0.3 * part.length, `${e.body.length} of ${part.length}`);
    // Self-contained: any decoder, in any order, with no history.
    assert.deepEqual(await decode(new LinkDecoder(), e), part);
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a corrupted body is refused and ends the epoch", async () => {
  const rng = new Prng(15);
  const enc = new LinkEncoder({ random: new Prng(5) });
  const dec = new LinkDecoder();
  try {
    await decode(dec, await enc.stream(logLine(rng, 0)));
    const e = await enc.stream(new TextEncoder().encode("refsync ".repeat(5000)));
    const bad = e.body.slice();
    bad[2] ^= 0xff; // a block header: the decoder itself catches it
    await assert.rejects(
      () => decode(dec, { ...e, body: bad }),
      (err) => isError(err, "bad_request") && /does not decode/.test((err as Error).message),
    );
    // The epoch's context is gone with it: its next request is refused, a new epoch is taken.
    const next = await enc.stream(logLine(rng, 1));
    assert.throws(() => offer(dec, next), isOutOfOrder);
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a body that decodes past its bound is refused (too_large)", async () => {
  const enc = new LinkEncoder({ random: new Prng(6) });
  try {
    const e = await enc.single(new Uint8Array(32 << 20));
    assert.ok(e.body.length < 4096, `${e.body.length} bytes for 32 MiB of zeros`);
    await assert.rejects(
      () => decode(new LinkDecoder(), e, { bytes: 0 }, 1 << 20),
      (err) => isError(err, "too_large"),
    );
  } finally {
    enc.close();
  }
});

Deno.test("link compression: an unknown encoding, a missing length or sequence is a bad request", () => {
  const dec = new LinkDecoder();
  const opts = { maxBytes: 1 << 20, received: () => {} };
  const body = () => new Response("x").body;
  assert.throws(
    () => dec.decode(new Headers({ "Content-Encoding": "gzip" }), body(), opts),
    (e) => isError(e, "bad_request") && /gzip/.test((e as Error).message),
  );
  assert.throws(
    () =>
      dec.decode(
        new Headers({ "Content-Encoding": "zstd", [RAW_LENGTH_HEADER]: "1", [LINK_HEADER]: "ab" }),
        body(),
        opts,
      ),
    (e) => isError(e, "bad_request") && /Refsync-Seq/.test((e as Error).message),
  );
  assert.throws(
    () => dec.decode(new Headers({ "Content-Encoding": "zstd" }), body(), opts),
    (e) => isError(e, "bad_request") && /Refsync-Raw-Length/.test((e as Error).message),
  );
});

Deno.test("link compression: log batches and CP parts encoded at once each decode to their own bytes", async () => {
  // The forwarder and a CP sync send side by side: they share the probe's context.
  const rng = new Prng(16);
  const enc = new LinkEncoder({ random: new Prng(7) });
  const dec = new LinkDecoder();
  try {
    const inputs = Array.from({ length: 6 }, (_, i) => {
      const lines: Uint8Array<ArrayBuffer>[] = [];
      for (let n = 0; n < 400 + 100 * i; n++) lines.push(logLine(rng, n));
      return lines;
    });
    const bodies = await Promise.all(inputs.map((l) => new Blob(l).bytes()));
    const encoded = await Promise.all(
      bodies.map((b, i) => i % 2 === 0 ? enc.stream(b) : enc.single(b)),
    );
    for (const [i, e] of encoded.entries()) {
      assert.equal(e.headers["Content-Encoding"], "zstd", `body ${i}`);
      assert.deepEqual(await decode(dec, e), bodies[i], `body ${i}`);
    }
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a context closed while a call runs finishes that call first", async () => {
  // A handshake restarts the epoch while a batch may be being compressed.
  const ctx = ZstdContext.compressor(1);
  const input = new TextEncoder().encode("a batch being compressed ".repeat(2000));
  const running = ctx.process(input, ZstdFlush.stream);
  ctx.close();
  const out = await running;
  assert.deepEqual(new Uint8Array(zlib.zstdDecompressSync(out)), input);
  await assert.rejects(() => ctx.process(input), /closed/);
});

/** `blocks` random 4 KiB blocks, of which every second past the first `fresh` repeats one earlier. */
function repeatingBatch(rng: Prng, blocks: number, fresh: number): Uint8Array {
  const batch = new Uint8Array(blocks * 4096);
  for (let i = 0; i < blocks; i++) {
    const at = i * 4096;
    if (i < fresh || i % 2 === 0) batch.set(rng.bytes(4096), at);
    else {
      const from = (rng.u32() % i) * 4096;
      batch.copyWithin(at, from, from + 4096);
    }
  }
  return batch;
}

Deno.test("link compression: a batch that repeats itself megabytes apart goes as one long-window frame", async () => {
  // 8 MiB of random blocks, 3/8 of them repeats of blocks up to 8 MiB before: the probe sees
  // random bytes, and level 1's 1 MiB window finds few of them.
  const batch = repeatingBatch(new Prng(21), 2048, 512);
  const enc = new LinkEncoder({ random: new Prng(5) });
  try {
    const plain = await enc.stream(batch);
    assert.equal(plain.headers["Content-Encoding"], "identity", "without the hint: raw");
    const e = await enc.stream(batch, true);
    assert.equal(e.headers["Content-Encoding"], "zstd");
    assert.equal(e.headers[LINK_HEADER], undefined, "self-contained: no epoch");
    assert.ok(e.body.length < 0.7 * batch.length, `${e.body.length} of ${batch.length}`);
    assert.deepEqual(await decode(new LinkDecoder(), e), batch);
    // Random bytes that do not repeat gain nothing from the hint: they go raw.
    const random = new Prng(22).bytes(4 << 20);
    assert.equal((await enc.stream(random, true)).headers["Content-Encoding"], "identity");
  } finally {
    enc.close();
  }
});

Deno.test("link compression: a slow link raises the level; the change opens a new epoch, all decodes", async () => {
  const rng = new Prng(21);
  let now = 0;
  const enc = new LinkEncoder({ random: new Prng(2), now: () => now });
  const dec = new LinkDecoder();
  try {
    const epochs: string[] = [];
    const levels: number[] = [];
    for (let i = 0; i < 40; i++) {
      const lines: Uint8Array[] = [];
      for (let n = 0, size = 0; size < 256 << 10; n++) {
        lines.push(logLine(rng, i * 10_000 + n));
        size += lines[lines.length - 1].length;
      }
      const batch = new Uint8Array(await new Blob(lines as BlobPart[]).arrayBuffer());
      const e = await enc.stream(batch);
      assert.equal(e.headers["Content-Encoding"], "zstd");
      assert.deepEqual(await decode(dec, e), batch, `batch ${i}`);
      if (epochs[epochs.length - 1] !== e.headers[LINK_HEADER]) epochs.push(e.headers[LINK_HEADER]);
      levels.push(enc.level);
      // The destination took 1 s per MiB to receive it: a 1 MiB/s link. A second passes a batch.
      enc.linkTimed(
        Math.max(e.body.length, 64 << 10),
        (Math.max(e.body.length, 64 << 10) / (1 << 20)) * 1000,
      );
      now += 1000;
    }
    assert.equal(levels[0], 1);
    assert.equal(levels[levels.length - 1], 6, `levels ${levels}`);
    assert.ok(levels.includes(3), `levels ${levels}`);
    // One epoch per level: each change started the stream over, and the decoder followed.
    assert.equal(epochs.length, 3, `epochs ${epochs}`);
  } finally {
    enc.close();
  }
});

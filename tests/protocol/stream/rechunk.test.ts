import assert from "node:assert/strict";
import { rechunk } from "../../../src/protocol/stream/rechunk.ts";
import {
  encodeFrame,
  Flag,
  framePayload,
  framePayloadMoved,
} from "../../../src/protocol/log-frame/mod.ts";
import { bytes, putFields } from "../../storage/log/helpers.ts";

/** The body in chunks of the given sizes. */
function body(data: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length];
    chunks.push(data.slice(at, at + n));
    at += n;
  }
  return ReadableStream.from(chunks);
}

Deno.test("rechunk: pieces of the size asked, each a buffer of its own from alloc", async () => {
  const data = bytes(10_000, 7);
  for (const expected of [10_000, undefined]) {
    const made: Uint8Array[] = [];
    const alloc = (n: number) => {
      made.push(new Uint8Array(n));
      return made[made.length - 1];
    };
    const pieces: Uint8Array[] = [];
    for await (const p of rechunk(body(data, [3, 4000, 17]), 4096, expected, alloc)) {
      pieces.push(p);
    }
    assert.deepEqual(pieces.map((p) => p.length), [4096, 4096, 1808], `expected ${expected}`);
    // Kept pieces still hold their bytes: no buffer was reused under them.
    pieces.forEach((p, i) => assert.deepEqual(p, data.subarray(i * 4096, i * 4096 + p.length)));
    assert.equal(new Set(pieces.map((p) => p.buffer)).size, 3);
    for (const p of pieces) assert.ok(made.some((m) => m.buffer === p.buffer), "from alloc");
    if (expected !== undefined) {
      // Sized to the announced length: the last piece fills its buffer exactly.
      assert.equal(pieces[2].buffer.byteLength, 1808);
    }
  }
});

/** A byte stream (as Deno's request bodies are) of the body in chunks of the given sizes. */
function byteBody(
  data: Uint8Array,
  sizes: number[],
): ReadableStream<Uint8Array> & { cancelled: boolean } {
  let at = 0;
  let i = 0;
  const out = new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at === data.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const n = Math.min(sizes[i++ % sizes.length], data.length - at);
      controller.enqueue(data.slice(at, at + n));
      at += n;
    },
    cancel() {
      flags.cancelled = true;
    },
  }) as ReadableStream<Uint8Array> & { cancelled: boolean };
  const flags = out;
  flags.cancelled = false;
  return out;
}

Deno.test("rechunk: a byte stream is read into alloc's buffers in place, and they stay frames", async () => {
  const data = bytes(10_000, 8);
  for (const expected of [10_000, undefined]) {
    const movedTo = new Set<ArrayBufferLike>();
    const pieces: Uint8Array[] = [];
    const body = byteBody(data, [3, 4000, 17, 9000]);
    for await (
      const p of rechunk(
        body,
        4096,
        expected,
        (n) => framePayload(1, n),
        (from, to) => {
          assert.ok((from as ArrayBuffer).detached, "a BYOB read detaches the buffer it moves");
          movedTo.add(to);
          framePayloadMoved(from, to);
        },
      )
    ) {
      pieces.push(p);
    }
    assert.deepEqual(pieces.map((p) => p.length), [4096, 4096, 1808], `expected ${expected}`);
    pieces.forEach((p, i) => assert.deepEqual(p, data.subarray(i * 4096, i * 4096 + p.length)));
    for (const [i, p] of pieces.entries()) {
      assert.ok(movedTo.has(p.buffer), `piece ${i} is a buffer the reads moved`);
      // Still the frame's buffer: encoding builds the frame around it, no copy (but for
      // the short last piece of a body of unknown length, which its buffer was not sized to).
      const frame = encodeFrame({ ...putFields(i + 1, "k"), flags: Flag.BLOCK_DIGESTS }, p);
      const sized = expected !== undefined || i < 2;
      assert.equal(frame.bytes.buffer === p.buffer, sized, `piece ${i} encoded in place`);
    }
    assert.equal(body.cancelled, false);
  }
});

Deno.test("rechunk: stopping early cancels a byte stream body", async () => {
  const body = byteBody(bytes(20_000, 9), [5000]);
  for await (const _ of rechunk(body, 4096, undefined)) break;
  assert.equal(body.cancelled, true);
});

import assert from "node:assert/strict";
import { rechunk } from "../../../src/protocol/stream/rechunk.ts";
import { bytes } from "../../storage/log/helpers.ts";

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

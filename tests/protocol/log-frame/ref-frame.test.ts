/**
 * Reference frames on the wire: every piece kind round-trips; a PREFIX
 * (format 2) names 1..4095 bytes of a block, and one outside that, or cut
 * short, is refused when encoded or decoded.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  decodeRefFrame,
  encodeFrame,
  encodeRefFrame,
  Flag,
  FrameError,
  HEADER_SIZE,
  Op,
  type Piece,
  REF_FORMAT,
} from "../../../src/protocol/log-frame/mod.ts";

const KEY = "dir/file.txt";

function frameOf(payload: Uint8Array): Uint8Array {
  const flags = Flag.COMMIT_NOW | Flag.REPLACE;
  return encodeFrame(
    { lsn: 7, op: Op.WRITE, flags, key: KEY, txn: 7, offset: 0, mtime: 3 },
    payload,
  )
    .bytes;
}

const check = (n: number) => new Uint8Array(16).fill(n);

Deno.test("ref frame: BYTES, LOG, BLOCK and PREFIX pieces round-trip", () => {
  assert.equal(REF_FORMAT, 2);
  const payload = new Uint8Array(4096 + 100 + 50 + 3000);
  const pieces: Piece[] = [
    { kind: "block", block: 2 ** 40, check: check(1) },
    { kind: "log", lsn: 12, payloadOffset: 8192, length: 100 },
    { kind: "bytes", bytes: new Uint8Array(50).fill(9) },
    { kind: "prefix", block: 77, length: 3000, check: check(2) },
  ];
  const ref = encodeRefFrame(frameOf(payload), pieces);
  assert.equal(ref.length, 12 + HEADER_SIZE + KEY.length + 25 + 17 + 55 + 27);
  const got = decodeRefFrame(ref);
  assert.equal(got.header.lsn, 7);
  assert.equal(got.header.payloadLength, payload.length);
  assert.deepEqual(got.pieces, pieces);
});

Deno.test("ref frame: a PREFIX outside 1..4095 bytes, or cut short, is refused", () => {
  for (const length of [0, 4096, 5000]) {
    const payload = new Uint8Array(length);
    assert.throws(
      () =>
        encodeRefFrame(frameOf(payload), [{ kind: "prefix", block: 5, length, check: check(0) }]),
      FrameError,
      `a PREFIX of ${length} bytes`,
    );
  }
  // A valid PREFIX of 10 bytes, then its length field rewritten on the wire.
  const ref = encodeRefFrame(frameOf(new Uint8Array(10)), [
    { kind: "prefix", block: 5, length: 10, check: check(0) },
  ]);
  const at = 12 + HEADER_SIZE + KEY.length;
  assert.equal(ref[at], 3, "the PREFIX tag");
  assert.deepEqual(decodeRefFrame(ref).pieces[0], {
    kind: "prefix",
    block: 5,
    length: 10,
    check: check(0),
  });
  for (const length of [0, 4096, 65535]) {
    const bad = ref.slice();
    new DataView(bad.buffer).setUint16(at + 9, length, true);
    assert.throws(() => decodeRefFrame(bad), FrameError, `length ${length}`);
  }
  const cut = ref.slice(0, ref.length - 1);
  new DataView(cut.buffer).setUint32(4, cut.length, true);
  assert.throws(() => decodeRefFrame(cut), /truncated/);
});

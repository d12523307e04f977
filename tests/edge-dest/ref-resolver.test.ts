/**
 * The destination's side of a PREFIX piece (the first bytes of a block live
 * in its committed CP): the frame it rebuilds is the one the source logged,
 * byte for byte; a forged one (a block not live, a check that lies, a length
 * that is not the source's) or a referenced block corrupted here resolves to
 * no frame (the reason), so the source is asked for the bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { resolveRefFrame } from "../../src/edge-dest/ref-resolver.ts";
import { blake3 } from "../../src/hash/blake3.ts";
import {
  decodeRefFrame,
  encodeFrame,
  encodeRefFrame,
  Flag,
  Op,
  type Piece,
} from "../../src/protocol/log-frame/mod.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { Prng } from "../../src/runtime/random.ts";
import { blocksHolding, flipBit } from "../support/datadir.ts";
import { bytesStream, withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 30, maxObjectBytes: 1 << 30 };

function frameOf(lsn: number, payload: Uint8Array): Uint8Array {
  const flags = Flag.COMMIT_NOW | Flag.REPLACE;
  return encodeFrame(
    { lsn, op: Op.WRITE, flags, key: "new/key", txn: lsn, offset: 0, mtime: 1 },
    payload,
  )
    .bytes;
}

/** A store whose committed CP holds a 1500-byte object; its block and the check of it. */
async function withSmallObject(
  fn: (
    store: ObjectStore,
    small: Uint8Array,
    block: number,
    check: Uint8Array,
    dir: string,
  ) => void,
): Promise<void> {
  await withTempDir(async (dir) => {
    const small = new Prng(3).fill(new Uint8Array(1500));
    let store = await ObjectStore.open(dir, OPTS);
    await store.write("small", bytesStream(small), { replace: true, offset: 0 });
    await store.checkpoint();
    await store.close();
    const padded = new Uint8Array(4096);
    padded.set(small);
    const [block, ...more] = blocksHolding(dir, padded);
    assert.equal(more.length, 0, "one block holds it");
    store = await ObjectStore.open(dir, OPTS);
    try {
      fn(store, small, block, blake3(padded).subarray(0, 16), dir);
    } finally {
      await store.close();
    }
  });
}

function resolve(store: ObjectStore, whole: Uint8Array, pieces: Piece[]) {
  return resolveRefFrame(store, decodeRefFrame(encodeRefFrame(whole, pieces)));
}

Deno.test("ref resolver: a PREFIX of a live block rebuilds the logged frame", async () => {
  await withSmallObject((store, small, block, check) => {
    const lsn = store.log.lastLsn + 1;
    const whole = frameOf(lsn, small.subarray(0, 1000));
    const got = resolve(store, whole, [{ kind: "prefix", block, length: 1000, check }]);
    assert.notEqual(typeof got, "string", String(got));
    assert.deepEqual((got as { bytes: Uint8Array }).bytes, whole);
  });
});

Deno.test("ref resolver: a forged PREFIX resolves to no frame", async () => {
  await withSmallObject((store, small, block, check) => {
    const whole = frameOf(store.log.lastLsn + 1, small);
    const lies = check.slice();
    lies[0] ^= 1;
    const cases: Array<[string, Piece[], RegExp]> = [
      ["a block not live", [{ kind: "prefix", block: 999, length: 1500, check }], /not live/],
      ["a check that lies", [{ kind: "prefix", block, length: 1500, check: lies }], /check/],
      [
        "bytes that are not the payload",
        [
          { kind: "prefix", block, length: 1499, check },
          { kind: "bytes", bytes: new Uint8Array([small[1499] ^ 1]) },
        ],
        /digest/,
      ],
    ];
    for (const [what, pieces, why] of cases) {
      const got = resolve(store, whole, pieces);
      assert.equal(typeof got, "string", what);
      assert.match(got as string, why, what);
    }
  });
});

Deno.test("ref resolver: a PREFIX of a block corrupted here resolves to no frame", async () => {
  await withSmallObject((store, small, block, check, dir) => {
    flipBit(`${dir}/volume.dat`, block * 4096 + 3000, 2); // past the prefix named: still refused
    const whole = frameOf(store.log.lastLsn + 1, small.subarray(0, 1000));
    const got = resolve(store, whole, [{ kind: "prefix", block, length: 1000, check }]);
    assert.equal(typeof got, "string");
    assert.match(got as string, /does not match its check/);
  });
});

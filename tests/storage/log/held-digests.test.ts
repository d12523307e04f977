/**
 * HeldDigests: the block digests kept from receipt answer only for the bytes
 * they were computed from, within their memory bound.
 */
import assert from "node:assert/strict";
import { hashBlocks } from "../../../src/hash/blake3.ts";
import { HeldDigests } from "../../../src/storage/log/held-digests.ts";
import { bytes } from "./helpers.ts";

const B = 4096;

Deno.test("HeldDigests: a run of the bytes kept gets their digests; any other bytes get null", () => {
  const held = new HeldDigests(64);
  const payload = bytes(4 * B + 100, 1); // a tail past the last full block has no digest
  const digests = hashBlocks(payload.subarray(0, 4 * B));
  held.keep(9, payload, digests);
  assert.deepEqual(held.match(9, B, payload.subarray(B, 3 * B)), digests.subarray(32, 96));
  assert.deepEqual(held.match(9, 0, payload.subarray(0, 4 * B)), digests);
  const flipped = payload.slice(B, 2 * B);
  flipped[1234] ^= 0x10;
  assert.equal(held.match(9, B, flipped), null, "one bit flipped at rest");
  assert.equal(held.match(9, 2 * B, payload.subarray(0, B)), null, "another block's bytes");
  assert.equal(held.match(9, 3 * B, payload.subarray(3 * B, 5 * B)), null, "past the full blocks");
  assert.equal(held.match(9, 100, payload.subarray(100, 100 + B)), null, "not block-aligned");
  assert.equal(held.match(8, 0, payload.subarray(0, B)), null, "a record not kept");
});

Deno.test("HeldDigests: never more than maxBlocks kept; the oldest records go first", () => {
  const held = new HeldDigests(10);
  const records = [1, 2, 3, 4].map((lsn) => {
    const payload = bytes(4 * B, lsn);
    const digests = hashBlocks(payload);
    held.keep(lsn, payload, digests);
    assert.ok(held.blocks <= 10, `${held.blocks} blocks kept after LSN ${lsn}`);
    return { lsn, payload, digests };
  });
  assert.equal(held.blocks, 8);
  for (const { lsn, payload, digests } of records) {
    const got = held.match(lsn, 0, payload);
    assert.deepEqual(got, lsn >= 3 ? digests : null, `LSN ${lsn}`);
  }
  const big = bytes(11 * B, 9);
  held.keep(5, big, hashBlocks(big));
  assert.equal(held.match(5, 0, big), null, "a record larger than the bound is not kept");
  assert.equal(held.blocks, 8);
});

Deno.test("HeldDigests: records leave with their log records (drop, truncate, reset)", () => {
  const held = new HeldDigests(100);
  const payloads = [1, 2, 3, 4, 5].map((lsn) => bytes(2 * B, lsn));
  payloads.forEach((p, i) => held.keep(i + 1, p, hashBlocks(p)));
  held.dropBelow(3);
  held.dropAbove(4);
  const kept = payloads.map((p, i) => held.match(i + 1, 0, p) !== null);
  assert.deepEqual(kept, [false, false, true, true, false]);
  assert.equal(held.blocks, 4);
  // A truncated LSN may come again with other bytes: only those are answered.
  const again = bytes(2 * B, 50);
  held.keep(5, again, hashBlocks(again));
  assert.equal(held.match(5, 0, payloads[4]), null);
  assert.deepEqual(held.match(5, 0, again), hashBlocks(again));
  held.clear();
  assert.equal(held.blocks, 0);
  assert.equal(held.match(3, 0, payloads[2]), null);
});

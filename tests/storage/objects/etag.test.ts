import assert from "node:assert/strict";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import { hashBlocks } from "../../../src/hash/blake3.ts";
import { EtagHasher, etagOf } from "../../../src/storage/objects/etag.ts";
import { blake3Hex, etagHex } from "../../support/blake3.ts";
import { Prng } from "../../support/prng.ts";

const SIZES = [0, 1, 4095, 4096, 4097, 8191, 8192, 3 * BLOCK_SIZE + 100, (1 << 20) + 5];

Deno.test("etagOf: the derived ETag of the definition, checked against the reference BLAKE3", () => {
  const rng = new Prng(11);
  for (const size of SIZES) {
    const bytes = rng.bytes(size);
    assert.equal(etagOf(bytes).toHex(), etagHex(bytes), `size ${size}`);
  }
});

Deno.test("etagOf: not the plain BLAKE3, and the size is part of it (a tail of zeros counts)", () => {
  const bytes = new Uint8Array(5000);
  assert.notEqual(etagOf(bytes).toHex(), blake3Hex(bytes));
  assert.notEqual(etagOf(bytes).toHex(), etagOf(bytes.subarray(0, 4999)).toHex());
  // An object whose tail spells the digest of another's last block hashes the same digest
  // list and tail bytes; only the size tells them apart.
  const a = new Uint8Array(2 * BLOCK_SIZE).fill(7);
  const b = new Uint8Array(BLOCK_SIZE + 32);
  b.set(a.subarray(0, BLOCK_SIZE));
  b.set(hashBlocks(a.subarray(BLOCK_SIZE)), BLOCK_SIZE);
  assert.notEqual(etagOf(a).toHex(), etagOf(b).toHex());
});

Deno.test("EtagHasher: any split of the bytes, and block digests fed in place of blocks, agree", () => {
  const rng = new Prng(12);
  const bytes = rng.bytes(5 * BLOCK_SIZE + 321);
  const want = etagHex(bytes);
  for (let trial = 0; trial < 50; trial++) {
    const h = new EtagHasher();
    for (let pos = 0; pos < bytes.length;) {
      const n = Math.min(bytes.length - pos, 1 + rng.int(3 * BLOCK_SIZE));
      h.update(bytes.subarray(pos, pos + n));
      pos += n;
    }
    assert.equal(h.size, bytes.length);
    assert.equal(h.digest().toHex(), want, `trial ${trial}`);
  }
  // As the write path feeds it: each record's block digests, then its tail.
  const h = new EtagHasher();
  h.blocks(hashBlocks(bytes.subarray(0, 2 * BLOCK_SIZE)));
  h.blocks(hashBlocks(bytes.subarray(2 * BLOCK_SIZE, 5 * BLOCK_SIZE)));
  h.update(bytes.subarray(5 * BLOCK_SIZE));
  assert.equal(h.digest().toHex(), want);
});

Deno.test("EtagHasher: refuses block digests off a 4 KiB boundary and use after digest()", () => {
  const h = new EtagHasher();
  h.update(new Uint8Array(100));
  assert.throws(
    () => h.blocks(hashBlocks(new Uint8Array(BLOCK_SIZE))),
    /object offset 100, which is not 4 KiB-aligned/,
  );
  const done = new EtagHasher();
  done.digest();
  assert.throws(() => done.update(new Uint8Array(1)), /fed after digest/);
  assert.throws(() => done.digest(), /digest\(\) twice/);
});

import { BLOCK_SIZE, concatBytes } from "../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import { hash as referenceHash } from "blake3-wasm";
import { blake3, Blake3Hasher, BlockHasher, hashBlocks } from "../../src/hash/blake3.ts";
import { Prng, seeded } from "../support/prng.ts";

/** The reference BLAKE3 (blake3-wasm, Rust compiled to wasm) as hex. */
function reference(data: Uint8Array): string {
  return referenceHash(data).toString("hex");
}

interface Vector {
  input_len: number;
  hash: string;
}

const vectors: Vector[] = JSON.parse(
  await Deno.readTextFile(new URL("./vectors/test_vectors.json", import.meta.url)),
).cases;

/** The test-vector input: bytes 0, 1, ..., 250, 0, 1, ... */
function vectorInput(len: number): Uint8Array {
  const data = new Uint8Array(len);
  for (let i = 0; i < len; i++) data[i] = i % 251;
  return data;
}

/** Feeds `data` to a fresh hasher in pieces drawn from `sizes` (cycled); returns it. */
function feed(data: Uint8Array, nextSize: () => number): {
  hasher: Blake3Hasher;
  blockDigests: Uint8Array[];
} {
  const hasher = new Blake3Hasher();
  const blockDigests: Uint8Array[] = [];
  for (let pos = 0; pos < data.length;) {
    const end = Math.min(data.length, pos + nextSize());
    blockDigests.push(hasher.update(data.subarray(pos, end)));
    pos = end;
  }
  return { hasher, blockDigests };
}

Deno.test("blake3: official test vectors", () => {
  assert.ok(vectors.length >= 35, "test vector file has every case");
  for (const v of vectors) {
    assert.deepEqual(
      blake3(vectorInput(v.input_len)).toHex(),
      v.hash.slice(0, 64),
      `len ${v.input_len}`,
    );
  }
});

Deno.test("Blake3Hasher: official test vectors in odd-sized pieces", () => {
  const pieceSizes = [1, 3, 7, 63, 64, 65, 1000, 1023, 1025, 4095, 4097, 5000];
  for (const v of vectors) {
    const data = vectorInput(v.input_len);
    for (const size of pieceSizes) {
      const { hasher } = feed(data, () => size);
      assert.deepEqual(hasher.length, v.input_len);
      assert.deepEqual(
        hasher.digest().toHex(),
        v.hash.slice(0, 64),
        `len ${v.input_len} by ${size}`,
      );
    }
  }
});

Deno.test(
  "hashBlocks: 10,000 seeded random blocks equal blake3-wasm",
  seeded(0xb10c, (seed) => {
    const rng = new Prng(seed);
    const n = 10_000;
    const data = rng.bytes(n * BLOCK_SIZE);
    // A few structured blocks as well: all zero, all 0xff.
    data.fill(0, 0, BLOCK_SIZE);
    data.fill(0xff, BLOCK_SIZE, 2 * BLOCK_SIZE);
    const digests = hashBlocks(data);
    assert.deepEqual(digests.length, n * 32);
    for (let i = 0; i < n; i++) {
      const block = data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
      const got = digests.subarray(i * 32, i * 32 + 32).toHex();
      if (got !== reference(block)) assert.deepEqual(got, reference(block), `block ${i}`);
      if (i % 1000 === 0) assert.deepEqual(blake3(block).toHex(), got, `blake3() of block ${i}`);
    }
  }),
);

Deno.test("hashBlocks: rejects a partial block; empty input gives nothing", () => {
  assert.deepEqual(hashBlocks(new Uint8Array(0)).length, 0);
  assert.throws(() => hashBlocks(new Uint8Array(100)), TypeError);
});

Deno.test(
  "Blake3Hasher: per-block digests and stream digest over random pieces",
  seeded(42, (seed) => {
    const rng = new Prng(seed);
    // Several stream lengths around block and chunk boundaries, each in random pieces.
    const lengths = [4096, 4097, 8191, 8192, 12288 + 1, 65536, 65536 + 4096, 300_000];
    for (const len of lengths) {
      const data = rng.bytes(len);
      const { hasher, blockDigests } = feed(data, () => 1 + rng.int(9000));
      const full = Math.floor(len / BLOCK_SIZE) * BLOCK_SIZE;
      assert.deepEqual(
        concatBytes(blockDigests).toHex(),
        hashBlocks(data.subarray(0, full)).toHex(),
        `block digests, len ${len}`,
      );
      assert.deepEqual(hasher.digest().toHex(), reference(data), `stream digest, len ${len}`);
    }
  }),
);

Deno.test(
  "Blake3Hasher: 5 MiB stream in random pieces equals blake3-wasm",
  seeded(7, (seed) => {
    const rng = new Prng(seed);
    const data = rng.bytes(5 * 1024 * 1024 + 123);
    const { hasher, blockDigests } = feed(data, () => 1 + rng.int(3 * 1024 * 1024));
    assert.deepEqual(hasher.digest().toHex(), reference(data));
    assert.deepEqual(concatBytes(blockDigests).length, Math.floor(data.length / BLOCK_SIZE) * 32);
    assert.deepEqual(blake3(data).toHex(), reference(data));
  }),
);

Deno.test(
  "Blake3Hasher: digest() mid-stream leaves the hasher usable",
  seeded(99, (seed) => {
    const rng = new Prng(seed);
    const data = rng.bytes(3 * BLOCK_SIZE + 500);
    const h = new Blake3Hasher();
    for (const cut of [BLOCK_SIZE, 2 * BLOCK_SIZE + 10, 3 * BLOCK_SIZE, data.length]) {
      h.update(data.subarray(h.length, cut));
      assert.deepEqual(h.digest().toHex(), reference(data.subarray(0, cut)), `at ${cut}`);
      assert.deepEqual(h.digest().toHex(), reference(data.subarray(0, cut)), `again at ${cut}`);
    }
    assert.deepEqual(new Blake3Hasher().digest().toHex(), reference(new Uint8Array(0)));
  }),
);

Deno.test(
  "Blake3Hasher: blockDigests false returns no digests, same stream digest",
  seeded(5, (seed) => {
    const data = new Prng(seed).bytes(10 * BLOCK_SIZE);
    const h = new Blake3Hasher({ blockDigests: false });
    assert.deepEqual(h.update(data).length, 0);
    assert.deepEqual(h.digest().toHex(), reference(data));
  }),
);

Deno.test(
  "BlockHasher: zero-copy batch equals hashBlocks",
  seeded(1234, (seed) => {
    const rng = new Prng(seed);
    const bh = new BlockHasher(16);
    assert.deepEqual(bh.capacity, 16);
    for (const n of [1, 5, 16, 0]) {
      const input = bh.input(n);
      assert.deepEqual(input.length, n * BLOCK_SIZE);
      rng.fill(input);
      const expected = hashBlocks(input.slice()).toHex();
      assert.deepEqual(bh.hash(n).toHex(), expected);
    }
    // Two BlockHashers own separate memories.
    const other = new BlockHasher(1);
    other.input(1).fill(1);
    bh.input(1).fill(2);
    assert.ok(other.hash(1).toHex() !== bh.hash(1).toHex());
    assert.throws(() => bh.input(17), TypeError);
    assert.throws(() => bh.hash(-1), TypeError);
    assert.throws(() => new BlockHasher(0), TypeError);
  }),
);

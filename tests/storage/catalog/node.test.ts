import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import { NodeCache } from "../../../src/storage/catalog/cache.ts";
import { crc32 } from "../../../src/storage/catalog/checksum.ts";
import { shortestSeparator } from "../../../src/storage/catalog/commit.ts";
import {
  CatalogNodeError,
  decodeNode,
  encodeNode,
  HEADER_BYTES,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  type Node,
  NODE_CAPACITY,
  nodeChecksum,
  payloadBytes,
} from "../../../src/storage/catalog/node.ts";
import { planSplit } from "../../../src/storage/catalog/split.ts";
import { seeded, uniform } from "../../support/prng.ts";
import { assertFreeSpaceZero, compare } from "./tree_check.ts";

const enc = new TextEncoder();

function leaf(entries: Array<[string, string]>, cells?: readonly number[]) {
  return {
    level: 0,
    keys: entries.map(([k]) => enc.encode(k)),
    values: entries.map(([, v]) => enc.encode(v)),
    children: [],
    cells: cells ?? entries.map(() => -1),
  };
}

function roundTrip(content: Parameters<typeof encodeNode>[0], template: Node | null = null) {
  const { bytes } = encodeNode(content, 9, template);
  const node = decodeNode(bytes, 42);
  assertFreeSpaceZero(node);
  assert.equal(node.level, content.level);
  assert.deepEqual(node.keys, content.keys);
  assert.deepEqual(node.values, content.values);
  assert.deepEqual(node.children, content.children);
  return node;
}

function diff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** Rewrites the checksum after a deliberate edit, so the decoder's other checks are reached. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer).setUint32(12, nodeChecksum(bytes), true);
  return bytes;
}

Deno.test("crc32 matches the standard check value, in one piece or chained", () => {
  const digits = enc.encode("123456789");
  assert.equal(crc32(0, digits), 0xcbf43926);
  assert.equal(crc32(crc32(0, digits, 0, 4), digits, 4), 0xcbf43926);
  assert.equal(crc32(0, new Uint8Array(0)), 0);
});

Deno.test("nodes round-trip, including the largest entries at the minimum fan-out", () => {
  roundTrip(leaf([["a", ""], ["b", "1"], ["é", "two"]]));
  const bigKey = (c: number) => new Uint8Array(MAX_KEY_BYTES).fill(c);
  roundTrip({
    level: 0,
    keys: [bigKey(1), bigKey(2)],
    values: [new Uint8Array(MAX_VALUE_BYTES).fill(7), new Uint8Array(MAX_VALUE_BYTES)],
    children: [],
    cells: [-1, -1],
  });
  roundTrip({
    level: 3,
    keys: [new Uint8Array(0), bigKey(1), bigKey(2)],
    values: [],
    children: [{ block: 2, birth: 1 }, { block: 0xffffffff, birth: 9 }, { block: 77, birth: 5 }],
    cells: [-1, -1, -1],
  });
  // One more byte than fits is refused.
  const keys = [bigKey(1), bigKey(2), bigKey(3)];
  assert.throws(
    () =>
      encodeNode(
        {
          level: 0,
          keys,
          values: keys.map(() => new Uint8Array(400)),
          children: [],
          cells: [-1, -1, -1],
        },
        1,
        null,
      ),
    /exceeds/,
  );
});

Deno.test(
  "a rewrite keeps surviving cells in place: an insert or repoint changes few bytes",
  seeded(1, (seed) => {
    const rng = uniform(seed);
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < 40; i++) entries.push([`photos/${1000 + i * 2}`, "x".repeat(20 + (i % 7))]);
    const base = roundTrip(leaf(entries));

    // Insert one entry in the middle: header, the slots after it, the new cell.
    const inserted: Array<[string, string]> = [...entries];
    inserted.splice(21, 0, ["photos/1041", "new value"]);
    const cells = [...base.cells];
    cells.splice(21, 0, -1);
    const { bytes } = encodeNode(leaf(inserted, cells), 10, base);
    const cell = 4 + "photos/1041".length + "new value".length;
    assert.ok(diff(bytes, base.raw) <= 2 + 4 + 4 + 2 * 20 + cell, `${diff(bytes, base.raw)}`);
    const after = roundTrip(leaf(inserted, cells), base);
    assert.deepEqual(after.cells.filter((_, i) => i !== 21), base.cells);

    // A same-size value overwrite is rewritten in place.
    const overwritten: Array<[string, string]> = entries.map((
      [k, v],
      i,
    ) => [k, i === 5 ? "y".repeat(v.length) : v]);
    const over = encodeNode(leaf(overwritten, base.cells), 10, base).bytes;
    assert.ok(diff(over, base.raw) <= entries[5][1].length + 8);

    // Deleting zeroes the dropped cell; its space is reused by best fit later.
    const removed = entries.filter((_, i) => i !== 7);
    const del = roundTrip(leaf(removed, base.cells.filter((_, i) => i !== 7)), base);
    assert.deepEqual(del.cells, base.cells.filter((_, i) => i !== 7));

    // An internal node whose child pointer changes: 8 bytes + birth + checksum.
    const internal = roundTrip({
      level: 1,
      keys: [new Uint8Array(0), enc.encode("m"), enc.encode("t")],
      values: [],
      children: [{ block: 10, birth: 3 }, { block: 11, birth: 3 }, { block: 12, birth: 4 }],
      cells: [-1, -1, -1],
    });
    const repointed = encodeNode(
      {
        level: 1,
        keys: internal.keys,
        values: [],
        children: [{ block: 10, birth: 3 }, { block: 9_999, birth: 9 }, { block: 12, birth: 4 }],
        cells: internal.cells,
      },
      10,
      internal,
    ).bytes;
    assert.ok(diff(repointed, internal.raw) <= 16);

    // Random edits keep every invariant; a fragmented node gets repacked.
    let node = base;
    for (let round = 0; round < 300; round++) {
      const keys = [...node.keys];
      const values = [...node.values];
      const hints = [...node.cells];
      const at = Math.floor(rng() * (keys.length + 1));
      if (rng() < 0.5 && keys.length > 1) {
        const i = Math.min(at, keys.length - 1);
        keys.splice(i, 1);
        values.splice(i, 1);
        hints.splice(i, 1);
      } else if (rng() < 0.5 && keys.length > 0) {
        const i = Math.min(at, keys.length - 1);
        values[i] = new Uint8Array(Math.floor(rng() * 200)).fill(round);
      } else {
        const key = enc.encode(`photos/${Math.floor(rng() * 1e6)}`);
        const i = keys.findIndex((k) => compare(k, key) >= 0);
        if (i >= 0 && compare(keys[i], key) === 0) continue;
        const to = i < 0 ? keys.length : i;
        keys.splice(to, 0, key);
        values.splice(to, 0, new Uint8Array(Math.floor(rng() * 200)).fill(round));
        hints.splice(to, 0, -1);
      }
      const content = { level: 0, keys, values, children: [], cells: hints };
      if (HEADER_BYTES + payloadBytes(content) > BLOCK_SIZE) break;
      node = roundTrip(content, node);
    }
  }),
);

Deno.test("decoding refuses corrupt or malformed nodes with an error naming the block", () => {
  const good = encodeNode(leaf([["a", "1"], ["b", "2"]]), 4, null).bytes;
  const expectError = (bytes: Uint8Array, pattern: RegExp) => {
    assert.throws(() => decodeNode(bytes, 31), (e) => {
      assert.ok(e instanceof CatalogNodeError);
      assert.equal(e.block, 31);
      assert.match(e.message, /^catalog node at block 31: /);
      assert.match(e.message, pattern);
      return true;
    });
  };
  for (const at of [0, 5, 6, 13, 100, 4095]) {
    const flipped = good.slice();
    flipped[at] ^= 0x10;
    expectError(flipped, at < 4 ? /not a catalog node/ : /checksum mismatch/);
  }
  expectError(new Uint8Array(BLOCK_SIZE), /not a catalog node/);
  expectError(good.subarray(0, 100), /expected 4096 bytes/);

  const edit = (f: (view: DataView, bytes: Uint8Array) => void) => {
    const bytes = good.slice();
    f(new DataView(bytes.buffer), bytes);
    return reseal(bytes);
  };
  expectError(edit((_, b) => b[4] = 2), /version/);
  expectError(edit((_, b) => b[5] = 200), /level/);
  expectError(edit((v) => v.setUint16(6, 0, true)), /entry count/);
  expectError(edit((v) => v.setUint16(6, 5000, true)), /entry count/);
  expectError(edit((v) => v.setUint16(16, 17, true)), /cell offset/); // inside the slot array
  expectError(edit((v) => v.setUint16(18, v.getUint16(16, true), true)), /keys out of order/);
  expectError(edit((v) => v.setUint16(v.getUint16(16, true), 3000, true)), /overruns|key length/);
  const node = decodeNode(good, 31);
  expectError(edit((v) => v.setUint16(node.cells[1], 0, true)), /key length 0/);
  expectError(
    edit((v) => v.setUint16(18, node.cells[0] - 1, true)),
    /overlap|order|length|overruns/,
  );
});

Deno.test("internal nodes: entry 0 has no key, children are real blocks born no later", () => {
  const content = {
    level: 1,
    keys: [new Uint8Array(0), enc.encode("k")],
    values: [],
    children: [{ block: 5, birth: 2 }, { block: 6, birth: 3 }],
    cells: [-1, -1],
  };
  const { bytes } = encodeNode(content, 3, null);
  const node = decodeNode(bytes, 8);
  const edit = (f: (view: DataView) => void) => {
    const copy = bytes.slice();
    f(new DataView(copy.buffer));
    return reseal(copy);
  };
  assert.throws(
    () => decodeNode(edit((v) => v.setUint32(node.cells[0] + 2, 1, true)), 8),
    /child block 1/,
  );
  assert.throws(
    () => decodeNode(edit((v) => v.setUint32(node.cells[1] + 6, 4, true)), 8),
    /child birth CP 4/,
  );
  assert.throws(() => encodeNode(content, 2, null), /child born after its parent/);
  assert.throws(
    () => encodeNode({ ...content, keys: [enc.encode("a"), enc.encode("k")] }, 3, null),
    /entry 0 must have an empty key/,
  );
});

Deno.test(
  "planSplit: pieces fit, cover every entry in order, and are balanced",
  seeded(99, (seed) => {
    assert.deepEqual(planSplit([1000, 1000, 1000, 1000, 1000], 4000), [3, 5]);
    assert.deepEqual(planSplit([2000, 2000, 100], 4080), [1, 3]);
    assert.deepEqual(planSplit([10, 20], 4000), [2]);
    assert.deepEqual(planSplit([], 4000), []);
    assert.throws(() => planSplit([5000], 4000), /exceeds/);
    const rng = uniform(seed);
    for (let round = 0; round < 500; round++) {
      const big = rng() < 0.3;
      const sizes = Array.from(
        { length: 1 + Math.floor(rng() * 200) },
        () => 7 + Math.floor(rng() * (big ? 1535 : 300)),
      );
      const ends = planSplit(sizes, NODE_CAPACITY);
      const total = sizes.reduce((a, b) => a + b, 0);
      assert.equal(ends.at(-1), sizes.length);
      let start = 0;
      for (const end of ends) {
        assert.ok(end > start);
        const piece = sizes.slice(start, end).reduce((a, b) => a + b, 0);
        assert.ok(piece <= NODE_CAPACITY);
        // No piece is left nearly empty when the whole needed splitting.
        if (ends.length > 1) assert.ok(piece >= NODE_CAPACITY / 4, `piece of ${piece} bytes`);
        start = end;
      }
      // As few pieces as filling each to the brim takes.
      let greedy = 1;
      for (let i = 0, filled = 0; i < sizes.length; i++) {
        if (filled + sizes[i] > NODE_CAPACITY) [greedy, filled] = [greedy + 1, 0];
        filled += sizes[i];
      }
      assert.equal(ends.length, greedy);
      assert.ok(ends.length >= Math.ceil(total / NODE_CAPACITY));
    }
  }),
);

Deno.test("shortestSeparator sits between two keys and is a prefix of the right one", () => {
  const cases: Array<[string, string, string]> = [
    ["photos/2024/a", "photos/2024/b", "photos/2024/b"],
    ["photos/2024/apple", "photos/2024/banana", "photos/2024/b"],
    ["abc", "abcdef", "abcd"],
    ["a", "b", "b"],
  ];
  for (const [left, right, separator] of cases) {
    assert.deepEqual(shortestSeparator(enc.encode(left), enc.encode(right)), enc.encode(separator));
  }
  assert.throws(() => shortestSeparator(enc.encode("b"), enc.encode("a")), /out of order/);
});

Deno.test("the node cache is bounded, least recently used first out, and birth-checked", () => {
  const node = (block: number, birth: number) => ({ block, birth }) as unknown as Node;
  const cache = new NodeCache(2);
  cache.set(node(1, 1));
  cache.set(node(2, 1));
  assert.ok(cache.get({ block: 1, birth: 1 })); // 1 is now the most recent
  cache.set(node(3, 1)); // evicts 2
  assert.equal(cache.size, 2);
  assert.equal(cache.get({ block: 2, birth: 1 }), undefined);
  assert.ok(cache.get({ block: 3, birth: 1 }));
  // The block reused by a later CP is another node.
  assert.equal(cache.get({ block: 1, birth: 7 }), undefined);
  assert.equal(cache.size, 1);
  const none = new NodeCache(0);
  none.set(node(1, 1));
  assert.equal(none.size, 0);
  assert.throws(() => new NodeCache(-1), RangeError);
});

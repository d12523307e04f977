import { compareBytes } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import {
  Catalog,
  type CatalogChange,
  CatalogNodeError,
  MAX_VALUE_BYTES,
} from "../../../src/storage/catalog/mod.ts";
import { decodeNode } from "../../../src/storage/catalog/node.ts";
import type { BlockPtr } from "../../../src/storage/volume/types.ts";
import { seeded, uniform } from "../../support/prng.ts";
import { MemCpWriter, MemVolume } from "./mem_volume.ts";
import {
  checkTree,
  expect,
  latin1,
  randomKey,
  randomValue,
  sameBytes,
  touchedBlocks,
  type TreeShape,
  unlatin1,
} from "./tree_check.ts";

const enc = new TextEncoder();
const ptrId = (ptr: BlockPtr) => `${ptr.block}:${ptr.birth}`;

/** A catalog on a MemVolume next to a model: a Map keyed by latin1 strings (byte order). */
class Harness {
  readonly volume: MemVolume;
  readonly rng: () => number;
  catalog: Catalog;
  model = new Map<string, Uint8Array>();
  /** The writer of the last CP. */
  last: MemCpWriter | null = null;
  /** The checked shape of the current tree. */
  shape: TreeShape | null = null;

  /** Long shared key prefixes: long separators, narrow internal nodes, a deeper tree. */
  readonly #prefixes: Uint8Array[] = [];

  constructor(seed: number, options: { cacheNodes?: number; longPrefixes?: boolean } = {}) {
    const { cacheNodes, longPrefixes = false } = options;
    this.rng = uniform(seed);
    if (longPrefixes) {
      for (let i = 0; i < 4; i++) {
        this.#prefixes.push(enc.encode(`${i}/`.padEnd(200 + Math.floor(this.rng() * 700), "p")));
      }
    }
    this.volume = new MemVolume(seed + 1000);
    this.catalog = new Catalog(this.volume, null, { cacheNodes });
  }

  sortedKeys(): string[] {
    return [...this.model.keys()].sort();
  }

  /**
   * Commits `changes` (latin1 key -> value | null) as one CP and checks
   * everything a CP must keep: block accounting (in MemVolume), the snapshot
   * of the previous root, unchanged nodes keeping their pointers, and
   * changedNodes. Returns the new tree's shape.
   */
  cp(changes: Map<string, Uint8Array | null>): TreeShape {
    const batch: CatalogChange[] = [...changes.keys()].sort().map((k) => ({
      key: unlatin1(k),
      value: changes.get(k)!,
    }));
    const oldRoot = this.catalog.root;
    const oldShape = this.shape ?? checkTree(this.volume, oldRoot);
    const touched = touchedBlocks(this.volume, oldRoot, batch.map((c) => c.key));
    // The previous contents, to read through the previous root afterwards:
    // all of them for small trees, a sample of big ones.
    const allKeys = this.model.size <= 4_000 ? null : [...this.model.keys()];
    const oldSample = allKeys === null ? null : Array.from({ length: 300 }, () => {
      const k = allKeys[Math.floor(this.rng() * allKeys.length)];
      return [k, this.model.get(k)!] as const;
    });
    const oldModel = oldSample === null ? new Map(this.model) : null;
    const oldSize = this.model.size;

    const w = this.volume.begin();
    const root = this.catalog.commit(batch, w);
    this.volume.commit(w, root);
    this.last = w;
    for (const [k, v] of changes) {
      if (v === null) this.model.delete(k);
      else this.model.set(k, v);
    }

    // The previous root still reads its old contents: its released blocks are
    // free but not yet reused.
    const snapshot = new Catalog(this.volume, oldRoot, { cacheNodes: 0 });
    if (oldModel !== null) {
      assertContents(snapshot, oldModel);
    } else {
      assert.equal(checkTree(this.volume, oldRoot).entries, oldSize);
      for (const [k, v] of oldSample!) {
        expect(sameBytes(snapshot.get(unlatin1(k)), v), "snapshot");
      }
    }

    const shape = checkTree(this.volume, root);
    const newPtrs = new Set(shape.levels.flat().map(ptrId));
    // Nodes off the changed paths keep their pointers. A node may be rewritten
    // when it is touched, or when its (touched) parent merges it into a
    // rewritten sibling; levels above a collapsed root are gone.
    for (let level = 0; level < shape.height; level++) {
      for (const ptr of oldShape.levels[level] ?? []) {
        const parent = oldShape.parent.get(ptr.block);
        if (touched.has(ptr.block) || (parent !== undefined && touched.has(parent))) continue;
        expect(newPtrs.has(ptrId(ptr)), () => `untouched node ${ptrId(ptr)} was rewritten`);
      }
    }
    const oldPtrs = new Set(oldShape.levels.flat().map(ptrId));
    const born = shape.levels.flat().filter((p) => p.birth === w.cp);
    for (const ptr of shape.levels.flat()) {
      if (ptr.birth !== w.cp) {
        expect(oldPtrs.has(ptrId(ptr)), () => `${ptrId(ptr)} came from nowhere`);
      }
    }
    // Exactly the blocks written in this CP are the nodes born in it.
    const sorted = (ptrs: BlockPtr[]) => ptrs.map(ptrId).sort();
    assert.deepEqual(sorted(this.catalog.changedNodes(w.cp - 1)), sorted(born));
    assert.deepEqual(born.map((p) => p.block).sort(), [...w.written.keys()].sort());
    const since = Math.floor(this.rng() * w.cp);
    assert.deepEqual(
      sorted(this.catalog.changedNodes(since)),
      sorted(shape.levels.flat().filter((p) => p.birth > since)),
    );
    assert.deepEqual(this.catalog.changedNodes(w.cp), []);
    assert.equal(shape.entries, this.model.size);
    this.shape = shape;
    return shape;
  }

  /** A random key, behind one of the long prefixes if there are any. */
  key(): Uint8Array {
    const key = randomKey(this.rng);
    if (this.#prefixes.length === 0) return key;
    const prefix = this.#prefixes[Math.floor(this.rng() * this.#prefixes.length)];
    const long = new Uint8Array(Math.min(1024, prefix.length + key.length));
    long.set(prefix);
    long.set(key.subarray(0, long.length - prefix.length), prefix.length);
    return long;
  }

  /** A random batch: inserts, overwrites, deletes, deletes of absent keys, identical overwrites. */
  batch(size: number, mix: { insert: number; overwrite: number; remove: number }) {
    const keys = [...this.model.keys()];
    const changes = new Map<string, Uint8Array | null>();
    for (let i = 0; i < size; i++) {
      const r = this.rng();
      const existing = keys.length > 0 ? keys[Math.floor(this.rng() * keys.length)] : null;
      if (r < mix.insert || existing === null) {
        changes.set(latin1(this.key()), randomValue(this.rng));
      } else if (r < mix.insert + mix.overwrite) {
        changes.set(existing, randomValue(this.rng));
      } else if (r < mix.insert + mix.overwrite + mix.remove) {
        changes.set(existing, null);
      } else if (this.rng() < 0.5) {
        changes.set(latin1(this.key()), null); // maybe absent: a no-op
      } else {
        changes.set(existing, this.model.get(existing)!.slice()); // identical: a no-op
      }
    }
    return changes;
  }

  /** Checks get, list and walk against the model. */
  verify(options: { getSample?: number; queries?: number } = {}): void {
    const { catalog, model, rng } = this;
    const keys = this.sortedKeys();
    const nodes = assertContents(catalog, model, keys);
    assert.equal(nodes.size, this.volume.live.size);
    assert.deepEqual([...nodes].sort(), [...this.volume.live].sort());

    const sample = options.getSample === undefined || options.getSample >= keys.length
      ? keys
      : Array.from({ length: options.getSample }, () => keys[Math.floor(rng() * keys.length)]);
    for (const k of sample) expect(sameBytes(catalog.get(unlatin1(k)), model.get(k)), "get");
    for (let i = 0; i < 50; i++) {
      const k = latin1(randomKey(rng));
      expect(sameBytes(catalog.get(unlatin1(k)), model.get(k)), "get of a random key");
    }

    // The whole catalog, page by page.
    assert.deepEqual(paginate(catalog, model, {}, 1 + Math.floor(rng() * 150)), keys);
    for (let q = 0; q < (options.queries ?? 20); q++) {
      const pick = () => keys.length > 0 ? keys[Math.floor(rng() * keys.length)] : "a";
      let prefix: string | undefined;
      const r = rng();
      if (r < 0.5) prefix = pick().slice(0, Math.floor(rng() * 8));
      else if (r < 0.8) prefix = latin1(randomKey(rng)).slice(0, 1 + Math.floor(rng() * 3));
      let startAfter: string | undefined;
      const s = rng();
      if (s < 0.3) startAfter = pick();
      else if (s < 0.5) startAfter = latin1(randomKey(rng));
      else if (s < 0.6 && prefix !== undefined) startAfter = prefix;
      const expected = keys.filter((k) =>
        (prefix === undefined || k.startsWith(prefix)) &&
        (startAfter === undefined || k > startAfter)
      );
      const options = {
        prefix: prefix === undefined ? undefined : unlatin1(prefix),
        startAfter: startAfter === undefined ? undefined : unlatin1(startAfter),
      };
      assert.deepEqual(paginate(catalog, model, options, 1 + Math.floor(rng() * 40)), expected);
      const none = catalog.list({ ...options, limit: 0 });
      assert.deepEqual(none, { entries: [], more: expected.length > 0 });
    }
  }
}

/** Lists page by page to the end; returns the keys (latin1), checking values and `more`. */
function paginate(
  catalog: Catalog,
  model: Map<string, Uint8Array>,
  options: { prefix?: Uint8Array; startAfter?: Uint8Array },
  limit: number,
): string[] {
  const out: string[] = [];
  let startAfter = options.startAfter;
  for (let page = 0; page < 100_000; page++) {
    const result = catalog.list({ prefix: options.prefix, startAfter, limit });
    assert.ok(result.entries.length <= limit);
    for (const entry of result.entries) {
      const k = latin1(entry.key);
      expect(sameBytes(entry.value, model.get(k)), "listed value");
      out.push(k);
    }
    if (!result.more) return out;
    assert.equal(result.entries.length, limit, "a short page must be the last");
    startAfter = result.entries.at(-1)!.key;
  }
  throw new Error("pagination did not end");
}

/** walk visits exactly the model's entries, in byte order; returns the node blocks it visited. */
function assertContents(
  catalog: Catalog,
  model: Map<string, Uint8Array>,
  keys?: string[],
): Set<number> {
  const expected = keys ?? [...model.keys()].sort();
  const seen: string[] = [];
  const nodes = new Set<number>();
  catalog.walk((ptr) => nodes.add(ptr.block), (key, value) => {
    const k = latin1(key);
    seen.push(k);
    expect(sameBytes(value, model.get(k)), "walk value");
  });
  assert.equal(seen.length, expected.length, "walk entry count");
  assert.deepEqual(seen, expected);
  return nodes;
}

Deno.test(
  "compareBytes orders by unsigned bytes (code points), not UTF-16 units",
  seeded(7, (seed) => {
    const smile = enc.encode("\u{1F600}");
    const last = enc.encode("\uFFFF");
    assert.ok("\u{1F600}" < "\uFFFF"); // what JS string comparison says
    assert.equal(compareBytes(smile, last), 1);
    assert.equal(compareBytes(last, smile), -1);
    assert.equal(compareBytes(enc.encode("a"), enc.encode("ab")), -1);
    assert.equal(compareBytes(enc.encode("ab"), enc.encode("ab")), 0);
    assert.equal(compareBytes(new Uint8Array([0x7f]), new Uint8Array([0x80])), -1);
    assert.equal(compareBytes(new Uint8Array([]), new Uint8Array([0])), -1);

    // And the catalog lists in that order.
    const h = new Harness(seed);
    const words = ["\uFFFF", "\u{1F600}", "z", "é", "\u{10FFFF}", "\u0000x"];
    h.cp(new Map(words.map((s) => [latin1(enc.encode(s)), enc.encode(s)])));
    const listed = h.catalog.list({ limit: 10 }).entries.map((e) =>
      new TextDecoder().decode(e.key)
    );
    assert.deepEqual(listed, ["\u0000x", "z", "é", "\uFFFF", "\u{1F600}", "\u{10FFFF}"]);
  }),
);

Deno.test("an empty catalog, empty batches and deletes-only batches write nothing", () => {
  const volume = new MemVolume();
  const catalog = new Catalog(volume, null);
  assert.equal(catalog.root, null);
  assert.equal(catalog.get(enc.encode("a")), undefined);
  assert.deepEqual(catalog.list({ limit: 5 }), { entries: [], more: false });
  assert.deepEqual(catalog.changedNodes(0), []);
  let visits = 0;
  catalog.walk(() => visits++, () => visits++);
  assert.equal(visits, 0);

  let w = volume.begin();
  assert.equal(catalog.commit([], w), null);
  assert.equal(catalog.commit([{ key: enc.encode("a"), value: null }], w), null);
  assert.equal(w.allocated.size + w.written.size + w.released.size, 0);
  volume.commit(w, null);

  w = volume.begin();
  const root = catalog.commit([{ key: enc.encode("a"), value: enc.encode("1") }], w)!;
  volume.commit(w, root);
  assert.deepEqual(root, { block: root.block, birth: 2 });
  w = volume.begin();
  // An empty batch, a delete of an absent key and an identical overwrite change nothing.
  assert.deepEqual(catalog.commit([], w), root);
  assert.deepEqual(catalog.commit([{ key: enc.encode("b"), value: null }], w), root);
  assert.deepEqual(catalog.commit([{ key: enc.encode("a"), value: enc.encode("1") }], w), root);
  assert.equal(w.allocated.size + w.written.size + w.released.size, 0);
  // Deleting the last key empties the tree.
  assert.equal(catalog.commit([{ key: enc.encode("a"), value: null }], w), null);
  volume.commit(w, null);
  assert.equal(volume.live.size, 0);
  assert.deepEqual([...volume.free], [root.block]);
});

Deno.test(
  "commit rejects a bad batch before writing anything",
  seeded(3, (seed) => {
    const h = new Harness(seed);
    h.cp(new Map([[latin1(enc.encode("m")), enc.encode("1")]]));
    const bad: Array<[string, CatalogChange[]]> = [
      ["unsorted", [{ key: enc.encode("b"), value: null }, { key: enc.encode("a"), value: null }]],
      ["duplicate", [{ key: enc.encode("a"), value: null }, { key: enc.encode("a"), value: null }]],
      ["empty key", [{ key: new Uint8Array(0), value: null }]],
      ["long key", [{ key: new Uint8Array(1025).fill(97), value: null }]],
      ["long value", [{ key: enc.encode("a"), value: new Uint8Array(MAX_VALUE_BYTES + 1) }]],
      ["byte order", [{ key: enc.encode("\u{1F600}"), value: null }, {
        key: enc.encode("\uFFFF"),
        value: null,
      }]],
    ];
    for (const [name, changes] of bad) {
      const w = h.volume.begin();
      assert.throws(() => h.catalog.commit(changes, w), RangeError, name);
      assert.equal(w.allocated.size + w.written.size + w.released.size, 0, name);
    }
    // Keys and values at the limits are fine.
    const w = h.volume.begin();
    const root = h.catalog.commit([
      { key: new Uint8Array(1024).fill(0xff), value: new Uint8Array(MAX_VALUE_BYTES) },
    ], w);
    h.volume.commit(w, root);
    // A CP number not above the root's birth would break changedNodes.
    const stale = new MemCpWriter(h.volume, root!.birth);
    assert.throws(() => h.catalog.commit([{ key: enc.encode("x"), value: null }], stale), /CP/);
    assert.throws(() => h.catalog.list({ limit: -1 }), RangeError);
    assert.throws(() => new Catalog(h.volume, null, { cacheNodes: 1.5 }), RangeError);
  }),
);

Deno.test(
  "random batches match a sorted model, CP after CP, as the tree grows and shrinks",
  seeded(11, (seed) => {
    for (const run of [0, 1, 2]) {
      // A tiny cache on one run exercises eviction and re-reads; long shared
      // prefixes on another make a deep tree of narrow internal nodes.
      const h = new Harness(seed + run, {
        cacheNodes: run === 1 ? 3 : undefined,
        longPrefixes: run === 2,
      });
      let maxHeight = 0;
      for (let cp = 0; cp < 48; cp++) {
        const size = 1 + Math.floor(h.rng() * (h.rng() < 0.2 ? 400 : 40));
        const mix = cp < 20
          ? { insert: 0.7, overwrite: 0.15, remove: 0.1 }
          : cp < 34
          ? { insert: 0.35, overwrite: 0.35, remove: 0.25 }
          : { insert: 0.05, overwrite: 0.05, remove: 0.85 };
        const changes = cp === 43
          ? new Map([...h.model.keys()].map((k) => [k, null]))
          : h.batch(size, mix);
        const shape = h.cp(changes);
        maxHeight = Math.max(maxHeight, shape.height);
        if (cp === 43) {
          assert.equal(h.catalog.root, null);
          assert.equal(h.volume.live.size, 0);
        }
        h.verify({ queries: 5, getSample: run === 1 ? 200 : undefined });
      }
      expect(maxHeight >= (run === 2 ? 4 : 2), () => `run ${run}: height ${maxHeight}`);
    }
  }),
);

Deno.test(
  "20,000 keys: height >= 3, one path per change, small diffs, merging on mass delete",
  seeded(2024, (seed) => {
    const h = new Harness(seed);
    // Four CPs of 5,000 new keys each (a few random keys repeat: bounded draws).
    for (let cp = 0; cp < 4; cp++) {
      const changes = new Map<string, Uint8Array | null>();
      for (let draw = 0; draw < 6_000 && changes.size < 5_000; draw++) {
        const k = latin1(randomKey(h.rng));
        if (!h.model.has(k)) changes.set(k, randomValue(h.rng));
      }
      h.cp(changes);
      h.verify({ getSample: 2_000, queries: 5 });
    }
    let shape = checkTree(h.volume, h.catalog.root);
    assert.ok(shape.entries >= 20_000);
    expect(shape.height >= 3, () => `height ${shape.height}`);

    // One overwrite of the same size rewrites exactly one root-to-leaf path;
    // each rewritten node differs from its DIFF base in a few bytes.
    for (let round = 0; round < 10; round++) {
      const keys = [...h.model.keys()];
      const key = keys[Math.floor(h.rng() * keys.length)];
      const old = h.model.get(key)!;
      if (old.length === 0) continue; // nothing to change in place
      const value = old.map((b) => b ^ 0x5a);
      h.cp(new Map([[key, value]]));
      const w = h.last!;
      assert.equal(w.written.size, shape.height);
      assert.equal(w.released.size, shape.height);
      for (const [block, base] of w.written) {
        const node = decodeNode(h.volume.blocks.get(block)!, block);
        const limit = node.level === 0 ? value.length + 8 : 8 + 8; // +birth +CRC (+child ptr)
        expect(diffBytes(h.volume, block, base) <= limit, () => `level ${node.level} diff`);
      }
    }
    // One insertion changes the header, the slots after it and the new cell.
    for (let round = 0; round < 10; round++) {
      const key = latin1(randomKey(h.rng));
      if (h.model.has(key)) continue;
      const value = randomValue(h.rng);
      h.cp(new Map([[key, value]]));
      const w = h.last!;
      if (w.written.size !== shape.height) continue; // it split a node
      for (const [block, base] of w.written) {
        const node = decodeNode(h.volume.blocks.get(block)!, block);
        if (node.level > 0) {
          assert.ok(diffBytes(h.volume, block, base) <= 16);
          continue;
        }
        const cell = 4 + unlatin1(key).length + value.length;
        const limit = 2 + 4 + 4 + 2 * node.keys.length + cell;
        expect(diffBytes(h.volume, block, base) <= limit, "leaf insert diff");
      }
    }

    // Mixed small batches.
    for (let cp = 0; cp < 8; cp++) {
      h.cp(h.batch(1 + Math.floor(h.rng() * 30), { insert: 0.4, overwrite: 0.3, remove: 0.25 }));
    }
    h.verify({ queries: 10 });

    // Deleting 97% of the keys merges underfull nodes and lowers the tree.
    // Each CP deletes keys spread over the whole tree, leaving sparse nodes.
    const peak = checkTree(h.volume, h.catalog.root).height;
    const doomed: string[][] = [[], [], []];
    for (const k of h.sortedKeys()) {
      if (h.rng() < 0.97) doomed[Math.floor(h.rng() * doomed.length)].push(k);
    }
    for (const keys of doomed) h.cp(new Map(keys.map((k) => [k, null])));
    h.verify({ queries: 10 });
    shape = checkTree(h.volume, h.catalog.root);
    expect(shape.height < peak, () => `height ${shape.height} after the mass delete`);
    let leafBytes = 0;
    for (const ptr of shape.levels[0]) {
      const node = decodeNode(h.volume.blocks.get(ptr.block)!, ptr.block);
      for (let i = 0; i < node.keys.length; i++) {
        leafBytes += 6 + node.keys[i].length + node.values[i].length;
      }
    }
    // Without merging, ~1,500 leaves would remain, most holding an entry or two.
    assert.ok(
      shape.levels[0].length <= Math.ceil(leafBytes / 1024) + 1,
      `${shape.levels[0].length} leaves for ${leafBytes} bytes`,
    );

    h.cp(new Map(h.sortedKeys().map((k) => [k, null])));
    assert.equal(h.catalog.root, null);
    assert.equal(h.volume.live.size, 0);
  }),
);

Deno.test(
  "a corrupt, stale or misdirected node throws an error naming its block",
  seeded(5, (seed) => {
    const h = new Harness(seed);
    for (let i = 0; i < 4; i++) h.cp(h.batch(300, { insert: 1, overwrite: 0, remove: 0 }));
    const root = h.catalog.root!;
    const shape = checkTree(h.volume, root);
    assert.ok(shape.height >= 2);
    const leaf = shape.levels[0][1];
    const node = decodeNode(h.volume.blocks.get(leaf.block)!, leaf.block);
    const key = node.keys[0].slice();

    const bytes = h.volume.blocks.get(leaf.block)!;
    const saved = bytes.slice();
    bytes[node.cells[0] + 5] ^= 0x01;
    const fresh = () => new Catalog(h.volume, root, { cacheNodes: 0 });
    const checksum = new RegExp(`block ${leaf.block}: checksum mismatch`);
    assert.throws(() => fresh().get(key), checksum);
    assert.throws(() => fresh().walk(() => {}), checksum);
    assert.throws(() => fresh().list({ startAfter: key, limit: 1 }), checksum);
    assert.throws(
      () => fresh().get(key),
      (e) => e instanceof CatalogNodeError && e.block === leaf.block,
    );
    // A commit into the corrupt leaf fails too, instead of spreading the damage.
    assert.throws(() => fresh().commit([{ key, value: null }], h.volume.begin()), checksum);
    bytes.set(saved);
    assert.ok(fresh().get(key) !== undefined);

    // A block that is no catalog node at all.
    h.volume.blocks.set(99_999, new Uint8Array(4096));
    assert.throws(
      () => new Catalog(h.volume, { block: 99_999, birth: 1 }).get(key),
      /block 99999: not a catalog node/,
    );
    // A pointer whose birth CP differs from the node's: stale or misdirected.
    assert.throws(
      () => new Catalog(h.volume, { block: root.block, birth: root.birth + 1 }).get(key),
      new RegExp(`block ${root.block}: written in CP ${root.birth} but its pointer expects`),
    );
  }),
);

function diffBytes(volume: MemVolume, block: number, base: number): number {
  assert.notEqual(base, 0);
  const a = volume.blocks.get(block)!;
  const b = volume.blocks.get(base)!;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/**
 * The per-object block map against an array model: seeded random sparse
 * updates across the depth changes (inline -> 1 level -> 2 levels -> 3),
 * holes punched and subtrees emptied. After every update (one CP):
 * lookups equal the model, holes read as block 0, walkMap visits exactly the
 * live pointers, every replaced map block is released exactly once, only the
 * map blocks on changed paths are written, and the encoded map round-trips.
 * Once through a test CpWriter double that reuses released blocks at once
 * (a read of a released block then sees foreign bytes), once on a real Volume.
 */
import assert from "node:assert/strict";
import {
  type BlockMap,
  decodeMap,
  depthFor,
  EMPTY_MAP,
  encodeMap,
  FANOUT,
  INLINE_POINTERS,
  lookupRange,
  mapEncodedSize,
  releaseMapBlocks,
  updateMap,
  walkMap,
} from "../../../src/storage/blockmap/blockmap.ts";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import {
  type BlockKind,
  type CheckedPtr,
  type CpWriter,
  NO_BLOCK,
} from "../../../src/storage/volume/types.ts";
import { CorruptBlockError } from "../../../src/storage/volume/check.ts";
import { Volume } from "../../../src/storage/volume/volume.ts";
import { Prng, seeded, testSeed, withSeed, withTempDir } from "../helpers.ts";

/**
 * A CpWriter that enforces the copy-on-write contract: writes only blocks
 * allocated in this CP (never a live one, never twice), releases only live
 * blocks and each once. Released blocks are reused by the very next CP and
 * overwritten with junk, so any read of a block after its release shows.
 */
class MapWriter implements CpWriter {
  cp = 0;
  /** Map blocks of the committed map. */
  live = new Set<number>();
  readonly blocks = new Map<number, Uint8Array>();
  readonly #free: number[] = [];
  #next = 2;
  allocated = new Set<number>();
  written = new Set<number>();
  released = new Set<number>();
  readonly #rng: Prng;

  constructor(rng: Prng) {
    this.#rng = rng;
  }

  begin(): void {
    this.cp++;
    this.allocated = new Set();
    this.written = new Set();
    this.released = new Set();
  }

  readBlock(block: number): Uint8Array {
    const bytes = this.blocks.get(block);
    assert.ok(bytes, `read of block ${block}, never written`);
    return bytes;
  }

  allocate(): number {
    let block: number;
    if (this.#free.length > 0 && this.#rng.chance(0.8)) {
      block = this.#free.splice(this.#rng.int(this.#free.length), 1)[0];
    } else {
      block = this.#next++;
    }
    assert.ok(!this.live.has(block) && !this.allocated.has(block));
    this.allocated.add(block);
    return block;
  }

  write(block: number, data: Uint8Array, kind: BlockKind, _base: number): void {
    assert.equal(data.length, BLOCK_SIZE);
    assert.equal(kind, "meta", "the block map writes only map blocks");
    assert.ok(this.allocated.has(block), `write of block ${block} not allocated in this CP`);
    assert.ok(!this.live.has(block), `write of live block ${block}`);
    assert.ok(!this.written.has(block), `block ${block} written twice`);
    this.written.add(block);
    this.blocks.set(block, data.slice());
  }

  release(block: number): void {
    assert.ok(this.live.has(block), `release of block ${block}, not a live map block`);
    assert.ok(!this.released.has(block), `block ${block} released twice`);
    this.released.add(block);
  }

  /** Ends the CP; released blocks become free and are scribbled over. */
  commit(): void {
    for (const b of this.allocated) {
      if (!this.written.has(b)) this.#free.push(b); // allocated but unused
    }
    for (const b of this.released) {
      this.live.delete(b);
      this.blocks.set(b, new Uint8Array(BLOCK_SIZE).fill(0xa5));
      this.#free.push(b);
    }
    for (const b of this.written) this.live.add(b);
  }
}

const span = (level: number) => FANOUT ** level;

/** A data pointer; its check is made up (data blocks are never read here), distinct per block. */
function dataPtr(block: number, birth: number): CheckedPtr {
  return { block, birth, check: BigInt(block) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn };
}

/** deepEqual for long pointer arrays, without its cost. */
function assertPtrs(actual: CheckedPtr[], expected: CheckedPtr[], ctx: string): void {
  assert.equal(actual.length, expected.length, `${ctx}: pointer count`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a.block !== e.block || a.birth !== e.birth || a.check !== e.check) {
      assert.fail(`${ctx}: file block ${i} is ${JSON.stringify(a)}, want ${JSON.stringify(e)}`);
    }
  }
}

/** Map blocks and data pointers of `map`, as walkMap reports them. */
function walk(
  reader: CpWriter | Volume,
  map: BlockMap,
): { mapBlocks: number[]; data: Map<number, CheckedPtr> } {
  const mapBlocks: number[] = [];
  const data = new Map<number, CheckedPtr>();
  walkMap(reader, map, (ptr, isMap, fileBlock) => {
    if (isMap) {
      mapBlocks.push(ptr.block);
      return;
    }
    assert.ok(!data.has(fileBlock), `file block ${fileBlock} visited twice`);
    data.set(fileBlock, ptr);
  });
  return { mapBlocks, data };
}

/**
 * Map nodes (level, index) that must exist for `model` under `depth`, and of
 * those the ones on the paths of `touched` file blocks (all of them when the
 * map was rebuilt).
 */
function expectedNodes(
  model: CheckedPtr[],
  depth: number,
  touched: Iterable<number> | null,
): { all: number; onPaths: number } {
  if (depth === 0) return { all: 0, onPaths: 0 };
  const nonEmpty = new Set<string>();
  model.forEach((p, fb) => {
    if (p.block === 0) return;
    for (let l = 1; l <= depth; l++) nonEmpty.add(`${l}:${Math.floor(fb / span(l))}`);
  });
  if (touched === null) return { all: nonEmpty.size, onPaths: nonEmpty.size };
  const paths = new Set<string>();
  for (const fb of touched) {
    for (let l = 1; l <= depth; l++) paths.add(`${l}:${Math.floor(fb / span(l))}`);
  }
  let onPaths = 0;
  for (const p of paths) if (nonEmpty.has(p)) onPaths++;
  return { all: nonEmpty.size, onPaths };
}

function roundTrip(map: BlockMap): BlockMap {
  const buf = new Uint8Array(mapEncodedSize(map) + 3);
  const end = encodeMap(new DataView(buf.buffer), 3, map);
  assert.equal(end, buf.length);
  return decodeMap(new DataView(buf.buffer), 3);
}

/** The size plan: inline, then one level, then two, then three (sparse). */
function nextSize(rng: Prng, step: number, n: number): number {
  if (step < 8) return Math.max(n, rng.range(0, INLINE_POINTERS));
  if (step === 8) return INLINE_POINTERS + 1;
  if (step < 20) return Math.max(n, rng.range(INLINE_POINTERS + 1, FANOUT));
  if (step === 20) return FANOUT + 1;
  if (step < 40) return rng.chance(0.5) ? n : Math.max(n, rng.range(FANOUT + 1, 6 * FANOUT));
  if (step === 40) return FANOUT * FANOUT + 3;
  return rng.chance(0.7) ? n : n + rng.range(1, 2000);
}

Deno.test("blockmap: random sparse updates across depth changes match an array model", async () => {
  const seed = testSeed(0xb10c);
  await withSeed(seed, "blockmap model", () => {
    const rng = new Prng(seed);
    const w = new MapWriter(rng.fork());
    let map: BlockMap = EMPTY_MAP;
    let model: CheckedPtr[] = [];
    let nextData = 10_000_000; // data pointers: never allocated, never read
    let depthsSeen = new Set<number>();
    for (let step = 0; step < 46; step++) {
      const n = nextSize(rng, step, model.length);
      w.begin();
      const changes = new Map<number, CheckedPtr>();
      const count = rng.range(1, step >= 40 ? 60 : 25);
      for (let k = 0; k < count && n > 0; k++) {
        let fb: number;
        const r = rng.float();
        if (r < 0.3) fb = rng.int(n);
        else if (r < 0.6) fb = Math.max(0, n - 1 - rng.int(Math.min(n, 40))); // near the end
        else if (r < 0.8) fb = Math.min(n - 1, rng.int(Math.min(n, 64))); // near the start
        else fb = Math.min(n - 1, (rng.int(Math.ceil(n / FANOUT)) * FANOUT) + rng.int(3));
        changes.set(fb, rng.chance(0.2) ? NO_BLOCK : dataPtr(nextData++, w.cp));
      }
      if (step % 7 === 6) {
        // Empty a whole leaf's worth of live pointers: its map block must go.
        const live = model.flatMap((p, i) => (p.block ? [i] : []));
        if (live.length > 0) {
          const leaf = Math.floor(live[rng.int(live.length)] / FANOUT);
          for (let i = leaf * FANOUT; i < Math.min(n, (leaf + 1) * FANOUT); i++) {
            changes.set(i, NO_BLOCK);
          }
        }
      }
      // Changes beyond the object's end are ignored.
      if (rng.chance(0.2)) changes.set(n + rng.int(5), dataPtr(nextData++, w.cp));

      const oldDepth = map.depth;
      const oldMapBlocks = new Set(walk(w, map).mapBlocks);
      model = model.slice(0, n);
      while (model.length < n) model.push(NO_BLOCK);
      for (const [fb, p] of changes) if (fb < n) model[fb] = p;

      map = updateMap(w, map, changes, n);

      const ctx = `seed ${seed} step ${step} (n=${n}, depth ${oldDepth}->${map.depth})`;
      assert.equal(map.depth, depthFor(n), ctx);
      depthsSeen.add(map.depth);
      // Lookups equal the model; holes are exactly block 0 birth 0.
      assertPtrs(lookupRange(w, map, 0, n), model, ctx);
      for (let k = 0; k < 10 && n > 0; k++) {
        const first = rng.int(n);
        const len = rng.range(1, Math.min(n - first, 4 * FANOUT));
        assertPtrs(lookupRange(w, map, first, len), model.slice(first, first + len), ctx);
      }
      // walkMap: exactly the live data pointers, each map block once.
      const { mapBlocks, data } = walk(w, map);
      const want = new Map<number, CheckedPtr>();
      model.forEach((p, i) => p.block !== 0 && want.set(i, p));
      assert.deepEqual(data, want, ctx);
      assert.equal(new Set(mapBlocks).size, mapBlocks.length, `${ctx}: map block visited twice`);
      // Accounting: new = old - released + written; replaced blocks released once.
      const newMapBlocks = new Set(mapBlocks);
      const expectNew = new Set([...oldMapBlocks].filter((b) => !w.released.has(b)));
      for (const b of w.written) expectNew.add(b);
      assert.deepEqual(newMapBlocks, expectNew, `${ctx}: map blocks leaked or lost`);
      for (const b of w.released) assert.ok(oldMapBlocks.has(b), ctx);
      for (const b of oldMapBlocks) {
        assert.equal(w.released.has(b), !newMapBlocks.has(b), `${ctx}: block ${b}`);
      }
      // Copy-on-write economy: only the nodes on changed paths are rewritten.
      const rebuilt = oldDepth !== map.depth;
      const touched = [...changes.keys()].filter((fb) => fb < n);
      const nodes = expectedNodes(model, map.depth, rebuilt ? null : touched);
      assert.equal(newMapBlocks.size, nodes.all, `${ctx}: map blocks in the tree`);
      assert.equal(w.written.size, nodes.onPaths, `${ctx}: map blocks written`);
      if (map.depth === 0) {
        assert.equal(newMapBlocks.size, 0, "an inline map has no map blocks");
        assert.equal(w.written.size, 0, ctx);
      }
      // Birth CPs: what this CP wrote carries its number.
      walkMap(w, map, (ptr, isMap) => {
        if (isMap) assert.equal(ptr.birth === w.cp, w.written.has(ptr.block), ctx);
      });
      assert.deepEqual(roundTrip(map), map, ctx);
      w.commit();
      // A leftover read of a released (now scribbled) block would fail here.
      assertPtrs(lookupRange(w, map, 0, n), model, `${ctx}: after commit`);
    }
    assert.deepEqual([...depthsSeen].sort(), [0, 1, 2, 3], "every depth was exercised");
    // Releasing the whole map releases every map block once, data blocks never.
    w.begin();
    const { mapBlocks } = walk(w, map);
    releaseMapBlocks(w, map);
    assert.deepEqual(w.released, new Set(mapBlocks));
    depthsSeen = new Set();
    return Promise.resolve();
  });
});

Deno.test(
  "blockmap: shrinking across a depth change keeps the first nBlocks pointers",
  seeded(0xb10d, (seed) => {
    const rng = new Prng(seed);
    const w = new MapWriter(rng);
    w.begin();
    const n = 2 * FANOUT + 5;
    const all = new Map<number, CheckedPtr>();
    for (let i = 0; i < n; i++) all.set(i, dataPtr(1000 + i, 1));
    let map: BlockMap = updateMap(w, EMPTY_MAP, all, n);
    assert.equal(map.depth, 2);
    w.commit();
    for (const target of [FANOUT - 3, 6]) {
      w.begin();
      const before: Set<number> = new Set(walk(w, map).mapBlocks);
      map = updateMap(w, map, new Map(), target);
      assert.equal(map.depth, depthFor(target));
      const expected = Array.from({ length: target }, (_, i) => (dataPtr(1000 + i, 1)));
      assert.deepEqual(lookupRange(w, map, 0, target), expected);
      assert.deepEqual(w.released, before, "a rebuild releases every old map block");
      assert.equal(walk(w, map).data.size, target);
      w.commit();
    }
  }),
);

Deno.test(
  "blockmap: lookups beyond the map's span read as holes, at every depth",
  seeded(2, (seed) => {
    const w = new MapWriter(new Prng(seed));
    for (const n of [3, 20, FANOUT + 20]) {
      w.begin();
      const changes = new Map<number, CheckedPtr>([[0, dataPtr(900, 1)], [n - 1, dataPtr(901, 1)]]);
      const map = updateMap(w, EMPTY_MAP, changes, n);
      w.commit();
      // An object grown past its map (a ranged write the CP is about to apply) asks for
      // pointers of file blocks the old map cannot hold: one hole per block asked.
      const far = span(map.depth === 0 ? 1 : map.depth) + 5;
      const got = lookupRange(w, map, n - 1, far);
      assert.equal(got.length, far, `depth ${map.depth}: one pointer per block asked`);
      assert.deepEqual(got[0], dataPtr(901, 1));
      assert.ok(got.slice(1).every((p) => p.block === 0 && p.birth === 0));
      assert.deepEqual(lookupRange(w, map, far * 2, 3), [NO_BLOCK, NO_BLOCK, NO_BLOCK]);
    }
  }),
);

Deno.test(
  "blockmap: a damaged, stale or misplaced map block is refused with a clear error",
  seeded(1, (seed) => {
    const w = new MapWriter(new Prng(seed));
    w.begin();
    const changes = new Map<number, CheckedPtr>();
    const other = new Map<number, CheckedPtr>();
    for (let i = 0; i < 20; i++) changes.set(i, dataPtr(500 + i, 1));
    for (let i = 0; i < 20; i++) other.set(i, dataPtr(700 + i, 1));
    const map = updateMap(w, EMPTY_MAP, changes, 20);
    const otherMap = updateMap(w, EMPTY_MAP, other, 20);
    w.commit();
    assert.ok("root" in map && map.root.block !== 0 && "root" in otherMap);
    const root = map.root;
    const bytes = w.blocks.get(root.block)!;
    const corrupt = (block: number) => (e: unknown) =>
      e instanceof CorruptBlockError && e.code === "corrupt" && e.block === block &&
      e.kind === "map" && /map block \d+ does not match the checksum/.test(e.message);
    bytes[100] ^= 1;
    assert.throws(() => lookupRange(w, map, 0, 1), corrupt(root.block));
    bytes[100] ^= 1;
    // A valid map block where another belongs (a misdirected or lost write): its own bytes are
    // intact, only the pointer's checksum tells.
    const misdirected = { depth: 1, root: { ...root, block: otherMap.root.block } };
    assert.throws(() => lookupRange(w, misdirected, 0, 1), corrupt(otherMap.root.block));
    assert.throws(() => lookupRange(w, { depth: 2, root }, 0, 1), /level-2/);
    assert.deepEqual(lookupRange(w, map, 19, 1), [dataPtr(519, 1)]);
  }),
);

Deno.test("blockmap: on a real Volume, committed CP by CP, and after reopen", async () => {
  const seed = testSeed(0xb10e);
  await withSeed(seed, "blockmap on volume", async () => {
    await withTempDir(async (dir) => {
      const rng = new Prng(seed);
      const path = `${dir}/volume.dat`;
      let vol = await Volume.open(path);
      let map: BlockMap = EMPTY_MAP;
      let model: CheckedPtr[] = [];
      let nextData = 5_000_000;
      for (let step = 0; step < 30; step++) {
        const n = nextSize(rng, step, model.length);
        const tx = vol.beginCp();
        const changes = new Map<number, CheckedPtr>();
        for (let k = rng.range(1, 30); k > 0 && n > 0; k--) {
          changes.set(
            rng.int(n),
            rng.chance(0.15) ? NO_BLOCK : dataPtr(nextData++, tx.cp),
          );
        }
        model = model.slice(0, n);
        while (model.length < n) model.push(NO_BLOCK);
        for (const [fb, p] of changes) model[fb] = p;
        const oldBlocks = walk(tx, map).mapBlocks;
        map = updateMap(tx, map, changes, n);
        assert.deepEqual(lookupRange(tx, map, 0, n), model, `step ${step} before commit`);
        await tx.commit({ ...vol.superblock, cp: tx.cp });
        // The real volume: what the map holds is live, what it replaced was released.
        const { mapBlocks } = walk(vol as unknown as CpWriter, map);
        for (const b of mapBlocks) assert.ok(vol.isLive(b), `step ${step}: block ${b} not live`);
        const kept = new Set(mapBlocks);
        assert.deepEqual(
          new Set(tx.released),
          new Set(oldBlocks.filter((b) => !kept.has(b))),
          `step ${step}: released`,
        );
        vol.free(tx.released);
        assert.deepEqual(lookupRange(vol, map, 0, n), model, `step ${step} after commit`);
      }
      const encoded = new Uint8Array(mapEncodedSize(map));
      encodeMap(new DataView(encoded.buffer), 0, map);
      vol.close();
      vol = await Volume.open(path);
      try {
        const reopened = decodeMap(new DataView(encoded.buffer), 0);
        assert.deepEqual(lookupRange(vol, reopened, 0, model.length), model, "after reopen");
      } finally {
        vol.close();
      }
    });
  });
});

/**
 * `addExtent` against a byte-array model: every extent stamps its id (lsn)
 * and payload offset over its range. After each random, overlapping extent
 * the list stays sorted, non-overlapping and non-empty, and maps every byte
 * to the newest writer with the right payload offset.
 */
import assert from "node:assert/strict";
import { addExtent, type Extent, extentBytes } from "../../../src/storage/objects/overlay.ts";
import { Prng, seeded } from "../helpers.ts";

function extent(lsn: number, start: number, end: number, payloadStart: number): Extent {
  return {
    start,
    end,
    lsn,
    position: { segment: lsn * 7, payloadOffset: 64 + lsn },
    payloadStart,
    blockDigests: lsn % 3 === 0 ? new Uint8Array([lsn & 0xff]) : null,
  };
}

/** Checks `list` against the model (writer id and payload offset of each byte). */
function check(list: Extent[], ids: Int32Array, offsets: Int32Array, ctx: string): void {
  let covered = 0;
  for (let k = 0; k < list.length; k++) {
    const x = list[k];
    assert.ok(x.start < x.end, `${ctx}: empty extent ${k} [${x.start}, ${x.end})`);
    if (k > 0) {
      assert.ok(list[k - 1].end <= x.start, `${ctx}: extents ${k - 1}, ${k} overlap or unsorted`);
    }
    // The other fields travel with the piece: same record, same position.
    assert.deepEqual(x.position, { segment: x.lsn * 7, payloadOffset: 64 + x.lsn }, ctx);
    assert.ok(x.payloadStart >= 0, ctx);
    for (let b = x.start; b < x.end; b++) {
      if (ids[b] !== x.lsn || offsets[b] !== x.payloadStart + (b - x.start)) {
        assert.fail(
          `${ctx}: byte ${b} maps to lsn ${x.lsn} payload ${x.payloadStart + b - x.start}, ` +
            `want lsn ${ids[b]} payload ${offsets[b]}`,
        );
      }
    }
    covered += x.end - x.start;
  }
  let want = 0;
  for (const id of ids) if (id !== 0) want++;
  assert.equal(covered, want, `${ctx}: bytes covered`);
  assert.equal(extentBytes(list), want, `${ctx}: extentBytes`);
}

Deno.test(
  "overlay: random overlapping extents match a byte model",
  seeded(0x0e1a, (seed) => {
    const rng = new Prng(seed);
    for (let round = 0; round < 40; round++) {
      const size = rng.pick([64, 300, 4096, 20_000]);
      const ids = new Int32Array(size);
      const offsets = new Int32Array(size);
      const list: Extent[] = [];
      for (let lsn = 1; lsn <= 120; lsn++) {
        const r = rng.float();
        let start: number;
        let len: number;
        if (r < 0.15) {
          // Exactly over an existing extent, or one of its edges.
          const x = list.length ? rng.pick(list) : null;
          start = x ? (rng.chance(0.5) ? x.start : x.end) : 0;
          len = x ? (rng.chance(0.5) ? x.end - x.start : rng.range(0, 10)) : 5;
        } else if (r < 0.25) {
          start = rng.int(size);
          len = 0; // empty: no-op
        } else if (r < 0.3) {
          start = 0;
          len = size; // covers everything
        } else {
          start = rng.int(size);
          len = rng.range(1, rng.chance(0.5) ? 16 : size);
        }
        const end = Math.min(size, start + len);
        const payloadStart = rng.int(1000);
        const before = list.slice();
        addExtent(list, extent(lsn, start, end, payloadStart));
        if (end <= start) {
          assert.deepEqual(list, before, "an empty extent changes nothing");
          continue;
        }
        for (let b = start; b < end; b++) {
          ids[b] = lsn;
          offsets[b] = payloadStart + (b - start);
        }
        check(list, ids, offsets, `seed ${seed} round ${round} lsn ${lsn} [${start}, ${end})`);
      }
    }
  }),
);

Deno.test("overlay: a split keeps both ends of the older extent, trimmed correctly", () => {
  const list: Extent[] = [];
  addExtent(list, extent(1, 0, 100, 10));
  addExtent(list, extent(2, 40, 60, 0));
  assert.deepEqual(list.map((x) => [x.lsn, x.start, x.end, x.payloadStart]), [
    [1, 0, 40, 10],
    [2, 40, 60, 0],
    [1, 60, 100, 70],
  ]);
  // The split halves are copies: changing one leaves the other and the original alone.
  assert.notEqual(list[0], list[2]);
  assert.equal(list[0].blockDigests, list[2].blockDigests);
  // Adjacent, not overlapping: nothing trimmed.
  addExtent(list, extent(3, 100, 120, 0));
  addExtent(list, extent(4, 200, 210, 5));
  assert.deepEqual(list.map((x) => [x.lsn, x.start, x.end]), [
    [1, 0, 40],
    [2, 40, 60],
    [1, 60, 100],
    [3, 100, 120],
    [4, 200, 210],
  ]);
  // One extent over several, with partial ends.
  addExtent(list, extent(5, 30, 105, 0));
  assert.deepEqual(list.map((x) => [x.lsn, x.start, x.end, x.payloadStart]), [
    [1, 0, 30, 10],
    [5, 30, 105, 0],
    [3, 105, 120, 5],
    [4, 200, 210, 5],
  ]);
  // Into a gap.
  addExtent(list, extent(6, 150, 160, 0));
  assert.deepEqual(list.map((x) => x.lsn), [1, 5, 3, 6, 4]);
});

/**
 * `Range` and `Content-Range` parsing (RFC 9110 §14): case-insensitive unit,
 * a last byte past the end clamped, anything that is not one byte range
 * ignored (the whole object is served), unsatisfiable ranges 416.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../src/errors/mod.ts";
import { parseContentRange, parseRange } from "../../src/http/range.ts";

const unsatisfiable = (e: unknown) => isError(e, "range_not_satisfiable");
const badRange = (e: unknown) => isError(e, "bad_range");

Deno.test("Range: single byte ranges, any case of the unit, clamped at the end", () => {
  assert.equal(parseRange(undefined, 100), null);
  assert.equal(parseRange(null, 100), null);
  assert.deepEqual(parseRange("bytes=0-9", 100), { start: 0, end: 10 });
  assert.deepEqual(parseRange("BYTES=0-9", 100), { start: 0, end: 10 });
  assert.deepEqual(parseRange("Bytes=5-", 100), { start: 5, end: 100 });
  assert.deepEqual(parseRange("bytes=90-500", 100), { start: 90, end: 100 });
  assert.deepEqual(parseRange("bytes=90-99999999999999999999", 100), { start: 90, end: 100 });
  assert.deepEqual(parseRange("bytes=99-99", 100), { start: 99, end: 100 });
  assert.deepEqual(parseRange("bytes=-10", 100), { start: 90, end: 100 });
  assert.deepEqual(parseRange("bytes=-1000", 100), { start: 0, end: 100 });
  assert.deepEqual(parseRange("  bytes=1-2 ", 100), { start: 1, end: 3 });
});

Deno.test("Range: what is not one byte range is ignored (the whole object)", () => {
  for (
    const h of [
      "",
      "bytes=",
      "bytes=-",
      "bytes=abc",
      "bytes=5-2",
      "bytes=0-1,3-4",
      "bytes=0-1, 3-4",
      "items=0-5",
      "bytes = 0-5",
      "bytes=0x10-20",
      "bytes=+1-2",
    ]
  ) {
    assert.equal(parseRange(h, 100), null, JSON.stringify(h));
  }
  // A suffix of an empty object is satisfiable, and empty: the whole (empty) object.
  assert.equal(parseRange("bytes=-5", 0), null);
});

Deno.test("Range: a range starting at or past the end, or bytes=-0, is unsatisfiable", () => {
  assert.throws(() => parseRange("bytes=100-", 100), unsatisfiable);
  assert.throws(() => parseRange("bytes=100-200", 100), unsatisfiable);
  assert.throws(() => parseRange("bytes=99999999999999999999-", 100), unsatisfiable);
  assert.throws(() => parseRange("bytes=-0", 100), unsatisfiable);
  assert.throws(() => parseRange("bytes=0-", 0), unsatisfiable);
});

Deno.test("Content-Range: bytes a-b/* or a-b/N with N past b; the unit in any case", () => {
  assert.deepEqual(parseContentRange("bytes 0-9/*"), { start: 0, end: 10, total: null });
  assert.deepEqual(parseContentRange("Bytes 10-19/20"), { start: 10, end: 20, total: 20 });
  assert.deepEqual(parseContentRange("BYTES 0-0/5000"), { start: 0, end: 1, total: 5000 });
  for (
    const h of [
      "bytes 5-2/*",
      "bytes 0-9/9",
      "bytes 0-9/5",
      "bytes */100",
      "bytes 0-9",
      "bytes=0-9/*",
      "0-9/*",
      "bytes 0-99999999999999999/*",
    ]
  ) {
    assert.throws(() => parseContentRange(h), badRange, h);
  }
});

/**
 * Sizes on the command line (appliance flags and the benchmark's): binary
 * units in any case, fractions rounded down, anything else refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseSize } from "../../src/cli/size.ts";

Deno.test("parseSize: numbers with binary units, null for anything else", () => {
  assert.equal(parseSize("4096"), 4096);
  assert.equal(parseSize("4096B"), 4096);
  assert.equal(parseSize("512KiB"), 512 * 2 ** 10);
  assert.equal(parseSize("64mib"), 64 * 2 ** 20);
  assert.equal(parseSize("64 MB"), 64 * 2 ** 20);
  assert.equal(parseSize("1.5G"), 1.5 * 2 ** 30);
  assert.equal(parseSize("2TiB"), 2 * 2 ** 40);
  assert.equal(parseSize("0.3"), 0);
  for (const bad of ["", "lots", "-1", "1KiBs", "1ki", "1e3", "0x10"]) {
    assert.equal(parseSize(bad), null, bad);
  }
});

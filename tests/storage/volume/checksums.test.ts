/**
 * The block map entry format (16 bytes: block, birth CP, the first 8 bytes of
 * the block's BLAKE3) and the on-disk format version: an old (version 1)
 * volume is refused with its version named. What the checks catch is in
 * corrupt-reads.test.ts.
 */
import assert from "node:assert/strict";
import { blake3 } from "../../../src/hash/blake3.ts";
import { blockCheck, checkOf } from "../../../src/storage/volume/check.ts";
import { BLOCK_SIZE } from "../../../src/bytes/mod.ts";
import {
  CHECKED_PTR_BYTES,
  NO_BLOCK,
  readCheckedPtr,
  writeCheckedPtr,
} from "../../../src/storage/volume/types.ts";
import { Volume } from "../../../src/storage/volume/volume.ts";
import { overwrite } from "../../support/datadir.ts";
import { Prng, seeded, withTempDir } from "../helpers.ts";

Deno.test(
  "checked pointers: 16 bytes, block + birth + the first 8 bytes of the block's BLAKE3",
  seeded(0xc4ec, (seed) => {
    assert.equal(CHECKED_PTR_BYTES, 16);
    const bytes = new Uint8Array(BLOCK_SIZE).fill(7);
    const digest = blake3(bytes);
    const check = blockCheck(bytes);
    assert.equal(check, checkOf(digest));
    assert.equal(check, new DataView(digest.buffer).getBigUint64(0, true));
    const buf = new Uint8Array(3 + CHECKED_PTR_BYTES).fill(0xee);
    const view = new DataView(buf.buffer);
    const ptr = { block: 0xfffffff0, birth: 0x12345678, check };
    writeCheckedPtr(view, 3, ptr);
    assert.deepEqual(readCheckedPtr(view, 3), ptr);
    assert.equal(view.getUint32(3, true), ptr.block);
    assert.equal(view.getUint32(7, true), ptr.birth);
    assert.deepEqual(buf.subarray(11, 19), digest.subarray(0, 8));
    assert.deepEqual(readCheckedPtr(new DataView(new ArrayBuffer(16)), 0), NO_BLOCK);
    // One flipped bit anywhere in the block changes the check.
    const rng = new Prng(seed);
    for (let i = 0; i < 64; i++) {
      const at = rng.int(BLOCK_SIZE);
      bytes[at] ^= 1 << rng.int(8);
      assert.notEqual(blockCheck(bytes), check, `flip at ${at}`);
      bytes.fill(7);
    }
  }),
);

Deno.test("checksums: a version 1 volume is refused with its version named", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/volume.dat`;
    (await Volume.open(path)).close();
    // Make slot 0 a valid version-1 superblock: version field 1, checksum recomputed.
    const slot = Deno.readFileSync(path).slice(0, BLOCK_SIZE);
    new DataView(slot.buffer).setUint32(8, 1, true);
    slot.set(blake3(slot.subarray(0, BLOCK_SIZE - 32)), BLOCK_SIZE - 32);
    overwrite(path, 0, slot);
    await assert.rejects(
      Volume.open(path),
      /a volume of format version 1; this refsync reads version 2 only/,
    );
  });
});

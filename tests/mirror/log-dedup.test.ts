/**
 * Dedup on the forwarding path between real appliance processes: an object
 * uploaded again under a new key crosses the link as references (to the log
 * the destination acknowledged, then, once a CP dropped that log, to blocks
 * of its committed CP), not as its bytes; both sides end with the same digest.
 * Small objects and tails go as the first bytes of a block it holds; a copy
 * with bytes inserted goes as the blocks it moved; one whose block is
 * damaged there is asked for, never logged wrong.
 */
import assert from "node:assert/strict";
import { adminCp, assertSameDigest, logEvents, spawnPair, statsOf } from "./pair.ts";
import { damageFileBlock } from "../support/datadir.ts";
import { putObject } from "../support/http.ts";
import { withTempDir } from "../support/appliance.ts";
import { Prng } from "../../src/runtime/random.ts";
import { concatBytes } from "../../src/bytes/mod.ts";
import { text } from "../support/text.ts";

interface LogWire {
  logBytesRaw: number;
  logRefBlocks: number;
  logRefBytes: number;
  logShiftedBlocks: number;
}

async function logWire(p: Parameters<typeof statsOf>[0]): Promise<LogWire> {
  const { logBytesRaw, logRefBlocks, logRefBytes, logShiftedBlocks } = (await statsOf(p))
    .wire as unknown as LogWire;
  return { logBytesRaw, logRefBlocks, logRefBytes, logShiftedBlocks };
}

Deno.test("log dedup: a re-upload under a new key is forwarded as references", async () => {
  await withTempDir("refsync-log-dedup-", async (dir) => {
    const pair = await spawnPair(dir);
    try {
      const { src, dst } = pair;
      const size = 2 * 1024 * 1024 + 100; // two 1 MiB records and a tail
      const bytes = new Uint8Array(size);
      new Prng(11).fill(bytes);
      assert.equal((await putObject(src.url, "first/original", bytes)).status, 201);
      const before = await logWire(src);

      // Same content, new key: the destination holds every record of it.
      assert.equal((await putObject(src.url, "second/copy", bytes)).status, 201);
      const copy = await logWire(src);
      const sent = copy.logBytesRaw - before.logBytesRaw;
      assert.ok(sent < size / 50, `the copy sent ${sent} bytes of log for ${size}`);
      assert.ok(copy.logRefBytes - before.logRefBytes > size * 0.98);

      // A CP drops that log on the destination: references go to its volume blocks.
      await adminCp(src);
      await assertSameDigest(src, dst, "after the first CP");
      const third = await logWire(src);
      assert.equal((await putObject(src.url, "third/copy", bytes)).status, 201);
      const after = await logWire(src);
      const sent3 = after.logBytesRaw - third.logBytesRaw;
      assert.ok(sent3 < size / 20, `the third copy sent ${sent3} bytes of log for ${size}`);
      assert.ok(after.logRefBlocks - third.logRefBlocks >= 500, "block references");

      // What the destination rebuilt is what the source logged.
      await adminCp(src);
      await assertSameDigest(src, dst, "after the second CP");
      const dstWire = await logWire(dst);
      assert.equal(dstWire.logRefBytes, after.logRefBytes, "every reference resolved there");
    } finally {
      await pair.stop();
    }
  });
});

/** `n` small objects (64 B to 4 KiB) and objects with a tail, seeded. */
function smallAndTails(n: number): Uint8Array[] {
  const rng = new Prng(12);
  return Array.from({ length: n }, (_, i) => {
    const size = i % 4 === 3 ? 3 * 4096 + 64 + rng.int(4000) : 64 + rng.int(4000);
    return rng.fill(new Uint8Array(size));
  });
}

Deno.test("log dedup: small objects and tails the destination holds are named; a damaged one is asked for", async () => {
  await withTempDir("refsync-log-dedup-small-", async (dir) => {
    const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
    try {
      const { src, dst } = pair;
      const objects = smallAndTails(40);
      const total = objects.reduce((a, o) => a + o.length, 0);
      for (const [i, o] of objects.entries()) {
        assert.equal((await putObject(src.url, `a/${i}`, o)).status, 201);
      }
      await adminCp(src);
      await assertSameDigest(src, dst, "after the first upload");

      // The destination's copy of object 0's block is damaged: that reference must fail there.
      const padded = new Uint8Array(4096);
      padded.set(objects[0]);
      damageFileBlock(`${dir}/dest`, padded, 0);

      const before = await logWire(src);
      const dstBefore = await logWire(dst);
      for (const [i, o] of objects.entries()) {
        assert.equal((await putObject(src.url, `b/${i}`, o)).status, 201);
      }
      const after = await logWire(src);
      const sent = after.logBytesRaw - before.logBytesRaw;
      assert.ok(sent < total / 10, `the second upload sent ${sent} bytes of log for ${total}`);
      assert.ok(after.logRefBlocks - before.logRefBlocks >= objects.length, "every object named");

      const missed = logEvents(dst, "log.ref_missed");
      assert.equal(missed.length, 1, "one reference failed there");
      assert.match(String(missed[0].cause), /does not match its check/);
      const dstAfter = await logWire(dst);
      const resolved = dstAfter.logRefBytes - dstBefore.logRefBytes;
      assert.ok(resolved > 0 && resolved < after.logRefBytes - before.logRefBytes);

      // The CP sync rebuilds the new objects from the destination's log: equal digests.
      await adminCp(src);
      await assertSameDigest(src, dst, "after the second upload");
    } finally {
      await pair.stop();
    }
  });
});

Deno.test("log dedup: an edited copy with bytes inserted before its content goes as references where it moved; a damaged block is asked for", async () => {
  await withTempDir("refsync-log-dedup-shift-", async (dir) => {
    const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
    try {
      const { src, dst } = pair;
      const original = text(21, 3 * 1024 * 1024 + 333); // four records, the last with a tail
      assert.equal((await putObject(src.url, "docs/v1", original)).status, 201);
      await adminCp(src);
      await assertSameDigest(src, dst, "after the original");

      // The destination's copy of one block of it is damaged: that reference must fail there.
      damageFileBlock(`${dir}/dest`, original, 100);

      const before = await logWire(src);
      const dstBefore = await logWire(dst);
      // A header line inserted at the top: every block of the original moves by its length.
      const edited = concatBytes([
        new TextEncoder().encode("// edited: one more line\n"),
        original,
      ]);
      assert.equal((await putObject(src.url, "docs/v2", edited)).status, 201);
      const after = await logWire(src);
      // References for all of it, and again whole the record the destination asked for.
      const sent = after.logBytesRaw - before.logBytesRaw;
      const bound = (1 << 20) + edited.length / 50;
      assert.ok(sent < bound, `the edited copy sent ${sent} bytes of log for ${edited.length}`);
      const shifted = after.logShiftedBlocks - before.logShiftedBlocks;
      assert.ok(shifted >= 760, `${shifted} of its 768 blocks named where they moved`);

      const missed = logEvents(dst, "log.ref_missed");
      assert.equal(missed.length, 1, "the record holding the damaged block was asked for");
      const dstAfter = await logWire(dst);
      const resolved = dstAfter.logRefBytes - dstBefore.logRefBytes;
      assert.ok(resolved > 0 && resolved < after.logRefBytes - before.logRefBytes);

      await adminCp(src);
      await assertSameDigest(src, dst, "after the edited copy");
    } finally {
      await pair.stop();
    }
  });
});

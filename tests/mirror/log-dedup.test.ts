/**
 * Dedup on the forwarding path between real appliance processes: an object
 * uploaded again under a new key crosses the link as references (to the log
 * the destination acknowledged, then, once a CP dropped that log, to blocks
 * of its committed CP), not as its bytes; both sides end with the same digest.
 */
import assert from "node:assert/strict";
import { adminCp, assertSameDigest, spawnPair, statsOf } from "./pair.ts";
import { putObject } from "../support/http.ts";
import { withTempDir } from "../support/appliance.ts";
import { Prng } from "../../src/runtime/random.ts";

interface LogWire {
  logBytesRaw: number;
  logRefBlocks: number;
  logRefBytes: number;
}

async function logWire(p: Parameters<typeof statsOf>[0]): Promise<LogWire> {
  const { logBytesRaw, logRefBlocks, logRefBytes } = (await statsOf(p)).wire as unknown as LogWire;
  return { logBytesRaw, logRefBlocks, logRefBytes };
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

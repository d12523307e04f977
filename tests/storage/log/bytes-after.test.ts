/**
 * `NvLog.bytesAfter`: the frame bytes above an LSN, across segments and
 * after a drop (what `refsync_mirror_lag_bytes` reports).
 */
import assert from "node:assert/strict";
import { NvLog } from "../../../src/storage/log/mod.ts";
import { bytes, put, withTempDir } from "./helpers.ts";

Deno.test("bytesAfter sums the frames above an LSN, across segments and after a drop", async () => {
  await withTempDir(async (dir) => {
    // Small segments: the 12 records below span several of them.
    const log = await NvLog.open(dir, { segmentSize: 20_000 });
    try {
      const frames: number[] = [];
      for (let i = 0; i < 12; i++) {
        const [r] = await log.append([put(`k${i}`, bytes(3000 + 500 * i, i))]);
        frames.push(r.frame.length);
      }
      assert.ok(log.stats.segments > 2, `${log.stats.segments} segments`);
      const after = (lsn: number) => frames.slice(lsn).reduce((a, b) => a + b, 0);
      for (const lsn of [0, 1, 5, 11]) assert.equal(log.bytesAfter(lsn), after(lsn), `LSN ${lsn}`);
      assert.equal(log.bytesAfter(12), 0);
      assert.equal(log.bytesAfter(99), 0);
      log.dropThrough(6);
      assert.ok(log.firstLsn > 1);
      // Below the first record held: all the log held.
      assert.equal(log.bytesAfter(0), after(log.firstLsn - 1));
      assert.equal(log.bytesAfter(9), after(9));
    } finally {
      await log.close();
    }
  });
});

/**
 * The deduper's hint to the link's compression: a batch whose blocks repeat
 * records the destination has not acknowledged yet (so no reference may name
 * them) is said to repeat itself; a batch of fresh blocks, or one whose
 * repeats went as references, is not.
 *
 * @module
 */
import assert from "node:assert/strict";
import { concatBytes } from "../../../src/bytes/mod.ts";
import { BlockLocator } from "../../../src/edge-source/mirror/block-locator.ts";
import { FrameDeduper } from "../../../src/edge-source/mirror/frame-deduper.ts";
import { newWireStats } from "../../../src/protocol/cp-sync/stats.ts";
import { NvLog } from "../../../src/storage/log/mod.ts";
import type { Volume } from "../../../src/storage/volume/volume.ts";
import { bytes, put, withTempDir } from "../../storage/log/helpers.ts";

/** What `send` was told of each batch. */
async function hints(acked: number, batches: Uint8Array[][]): Promise<boolean[]> {
  const seen: boolean[] = [];
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    try {
      const locator = new BlockLocator();
      // No block of a volume is named here: only log records are.
      const volume = {} as Volume;
      const view = {
        ackedLsn: () => acked,
        droppedLsn: () => 0,
        holdsBlock: () => false,
        refFormat: () => 2,
      };
      const deduper = new FrameDeduper(locator, log, volume, view, newWireStats());
      for (const payloads of batches) {
        const records = await log.append(payloads.map((p, i) => put(`k${i}`, p)));
        locator.addLogRecords(records, 0);
        await deduper.send(records, (_bytes, repeats) => {
          seen.push(repeats);
          return Promise.resolve(records[records.length - 1].lsn);
        });
      }
    } finally {
      await log.close();
    }
  });
  return seen;
}

const a = bytes(64 * 4096, 1);
const b = bytes(64 * 4096, 2);

Deno.test("frame deduper: repeats of unacknowledged blocks in a batch hint the link", async () => {
  // Batch 1: a, then b; b's second half repeats a's blocks, and record 1 is not acknowledged.
  const half = concatBytes([b.subarray(0, 32 * 4096), a.subarray(0, 32 * 4096)]);
  assert.deepEqual(await hints(0, [[a, half]]), [true]);
});

Deno.test("frame deduper: a repeat within one record hints the link too", async () => {
  assert.deepEqual(await hints(0, [[concatBytes([a, a])]]), [true]);
});

Deno.test("frame deduper: fresh blocks, or repeats the destination holds, are no hint", async () => {
  // Fresh: nothing repeats.
  assert.deepEqual(await hints(0, [[a], [b]]), [false, false]);
  // Batch 2 repeats batch 1, which the destination acknowledged: references, not a hint.
  assert.deepEqual(await hints(1, [[a], [a]]), [false, false]);
});

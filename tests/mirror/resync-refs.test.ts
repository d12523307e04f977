/**
 * A resync after an outage sends the changed bytes once: the log the
 * destination lacked goes first (from the source's log), and the resync's
 * blocks born from those records are references to them. Before, the resync
 * started beside the log catch-up and sent every changed block again as DATA
 * (twice the changed bytes on the wire).
 *
 * @module
 */
import assert from "node:assert/strict";
import { resyncOnce } from "../../bench/lib/resync.ts";
import { killAll, withTempDir } from "../support/appliance.ts";

Deno.test("resync after an outage: the changed bytes cross once, the resync is references", async () => {
  await withTempDir("refsync-resync-refs-", async (dir) => {
    const changes = 8 << 20;
    try {
      const run = await resyncOnce(dir, 8 << 20, changes);
      assert.equal(run.digestMatch, true);
      assert.ok(
        run.resyncBytes < changes / 8,
        `the resync sent ${run.resyncBytes} bytes for ${changes} changed`,
      );
      assert.ok(
        run.wireBytes < 1.1 * changes,
        `${run.wireBytes} bytes sent in all for ${changes} changed`,
      );
    } finally {
      await killAll();
    }
  });
});

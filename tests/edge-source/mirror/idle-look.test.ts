/**
 * The mirror looks at an idle destination every `LOOK_MS`: one that holds
 * less than it acknowledged (its disk replaced while nothing was written) is
 * handshaken again, and gets the log again, instead of being reported in sync
 * until the next write (found by the simulator: `deno task sim --seed 71
 * --trial 2`, the pair idle after the replacement, the destination at CP 0
 * while the source said `in-sync`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { LOOK_MS } from "../../../src/edge-source/mirror/mirror.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import { advance } from "../../support/sim-time.ts";
import { bytesStream, withTempDir } from "../../storage/helpers.ts";
import { FakeDest, withFakeMirror } from "./fake-dest.ts";

Deno.test("mirror: an idle destination that lost the log it acknowledged is handshaken again and sent it", async () => {
  await withTempDir(async (dir) => {
    const dest = new FakeDest();
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: "warn", sink: (l) => lines.push(JSON.parse(l)) });
    await withFakeMirror(
      dir,
      dest,
      { policy: "strict", logger },
      async ({ mirror, store, sim }) => {
        for (const key of ["a", "b", "c"]) {
          const body = bytesStream(new Uint8Array(5000).fill(key.charCodeAt(0)));
          assert.equal((await store.write(key, body, { replace: true, offset: 0 })).mirrored, true);
        }
        const last = store.log.lastLsn;
        assert.equal(dest.held, last);
        dest.held = 0; // its disk replaced; the pair is idle
        assert.equal(mirror.state, "in-sync", "nothing told it yet");
        await advance(sim, LOOK_MS + 1000);
        assert.equal(dest.held, last, "the log was sent again");
        const lost = lines.filter((l) => l.event === "mirror.lost").map((l) => String(l.cause));
        assert.deepEqual(lost, [
          `the destination holds CP 0 and the log to LSN 0; it held CP 0 and LSN ${last}`,
        ]);
        assert.equal(mirror.state, "in-sync");
      },
    );
  });
});

import assert from "node:assert/strict";
import { renderResync, type ResyncRun } from "../../bench/lib/resync.ts";

const run = (volumeBytes: number, seconds: number, wireBytes: number): ResyncRun => ({
  volumeBytes,
  changedBytes: 8 << 20,
  seconds,
  wireBytes,
  resyncBytes: wireBytes / 2,
  digestMatch: true,
});

Deno.test("resync section: both runs, the ratios against the 1.2x goal", () => {
  const small = run(8 << 20, 1, 8 << 20);
  const large = run(128 << 20, 1.5, 8 << 20);
  const text = renderResync({ small, large, timeRatio: 1.5, bytesRatio: 1 }).join("\n");
  assert.match(text, /\| 8 MiB \| 8 MiB \| 1\.00 s \| 8\.0 MiB \| 4\.0 MiB \| equal \|/);
  assert.match(text, /\| 128 MiB \| 8 MiB \| 1\.50 s \|/);
  assert.match(text, /time x1\.5 \(goal <= 1\.2: \*\*missed\*\*\), bytes x1 \(goal <= 1\.2: met\)/);
});

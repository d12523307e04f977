/** `--verify-interval` and the duration syntax it takes. */
import assert from "node:assert/strict";
import { parseSourceArgs, UsageError } from "../../src/cli/args.ts";
import { parseDuration } from "../../src/cli/duration.ts";

Deno.test("durations: ms by default, ms/s/m/h/d suffixes; anything else is not one", () => {
  assert.deepEqual(
    ["250", "500ms", "30s", "10m", "6H", "1d", "1.5s"].map(parseDuration),
    [250, 500, 30_000, 600_000, 21_600_000, 86_400_000, 1500],
  );
  assert.deepEqual(["", "soon", "-1s", "10 years"].map(parseDuration), [null, null, null, null]);
});

Deno.test("--verify-interval: off by default, parsed when given, a clear error when not a duration", () => {
  assert.equal(parseSourceArgs([]).verifyIntervalMs, 0);
  assert.equal(parseSourceArgs(["--verify-interval", "6h"]).verifyIntervalMs, 21_600_000);
  assert.throws(
    () => parseSourceArgs(["--verify-interval", "often"]),
    (e) =>
      e instanceof UsageError && /--verify-interval: 'often' is not a duration/.test(e.message),
  );
});

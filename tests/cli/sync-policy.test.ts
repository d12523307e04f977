/**
 * `--sync-policy strict|available` (src/cli/args.ts): strict by default, for
 * a source and for `pair`; anything else is a usage error naming the choices.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parsePairArgs, parseSourceArgs, UsageError } from "../../src/cli/args.ts";

Deno.test("--sync-policy: strict by default, available when asked, anything else refused", () => {
  for (const parse of [parseSourceArgs, (a: string[]) => parsePairArgs(a).source]) {
    assert.equal(parse([]).syncPolicy, "strict");
    assert.equal(parse(["--sync-policy", "available"]).syncPolicy, "available");
    assert.equal(parse(["--sync-policy", "strict"]).syncPolicy, "strict");
    assert.throws(
      () => parse(["--sync-policy", "async"]),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === "--sync-policy: 'async' is not strict or available",
    );
  }
});

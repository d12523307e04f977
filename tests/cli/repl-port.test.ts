/** The log stream's flags: a port, 0, or off, on the destination (and `pair`) and the source. */
import assert from "node:assert/strict";
import { parseDestArgs, parsePairArgs, parseSourceArgs, UsageError } from "../../src/cli/args.ts";

Deno.test("flags: --repl-port (dest, pair) and --dest-log-port (source) take a port or off", () => {
  assert.equal(parseDestArgs([]).replPort, 0, "any free port by default");
  assert.equal(parseDestArgs(["--repl-port", "9100"]).replPort, 9100);
  assert.equal(parseDestArgs(["--repl-port", "off"]).replPort, null);
  assert.equal(parsePairArgs(["--repl-port", "off"]).dest.replPort, null, "pair passes it on");
  const src = (args: string[]) =>
    parseSourceArgs(["--dest", "http://h:1", "--token", "t", ...args]);
  assert.equal(src([]).destLogPort, null, "the announced port by default");
  assert.equal(src(["--dest-log-port", "7000"]).destLogPort, 7000);
  assert.equal(src(["--dest-log-port", "off"]).destLogPort, "off");
  for (const bad of ["65536", "-1", "x", "1.5", ""]) {
    assert.throws(() => parseDestArgs(["--repl-port", bad]), UsageError, `--repl-port ${bad}`);
    assert.throws(() => src(["--dest-log-port", bad]), UsageError, `--dest-log-port ${bad}`);
  }
  assert.throws(
    () => parseDestArgs(["--repl-port", "65536"]),
    /--repl-port: '65536' is not a port \(0-65535\) or off/,
  );
});

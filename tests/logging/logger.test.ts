import assert from "node:assert/strict";
import { createLogger, parseLogLevel } from "../../src/logging/mod.ts";

Deno.test("logger: one JSON line per event at or above the level, with child fields", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", sink: (l) => lines.push(l), now: () => 0 });
  const child = log.child({ role: "source" });
  child.debug("hidden");
  child.info("mirror.connected", { url: "http://127.0.0.1:1" });
  log.error("cp.failed", { cause: new Error("EIO") });
  assert.deepEqual(lines.map((l) => JSON.parse(l)), [
    {
      ts: "1970-01-01T00:00:00.000Z",
      level: "info",
      event: "mirror.connected",
      role: "source",
      url: "http://127.0.0.1:1",
    },
    { ts: "1970-01-01T00:00:00.000Z", level: "error", event: "cp.failed", cause: "EIO" },
  ]);
  assert.equal(log.enabled("debug"), false);
  assert.equal(log.enabled("warn"), true);
});

Deno.test("logger: --log-level values", () => {
  assert.equal(parseLogLevel("warn"), "warn");
  assert.equal(parseLogLevel("verbose"), null);
});

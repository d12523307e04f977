/**
 * What an appliance says, read from the stderr of real processes: JSON lines
 * only; startup with role, data directory and URL; `cp.committed` at debug
 * (and not at the default info); the stop. A generated pair token is shown
 * once, in the listening line of the start that made it.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  adminAuth,
  type ApplianceProcess,
  spawnAppliance,
  withTempDir,
} from "../support/appliance.ts";
import { objectUrl, request } from "../support/http.ts";
import { sleep, withDeadline } from "../support/timeout.ts";

type Line = Record<string, unknown>;

/** Every stderr line, parsed; a line that is not JSON fails the test. */
function logLines(p: ApplianceProcess): Line[] {
  return p.stderr.split("\n").filter((l) => l.trim() !== "").map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      throw new Error(`stderr line is not JSON: ${l}`);
    }
  });
}

/** The listening lines on stdout. */
function listeningLines(p: ApplianceProcess): Line[] {
  return p.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line)
    .filter((l) => l.event === "listening");
}

/** Waits (at most 100 times 50 ms) for a log line with `event`. */
async function waitForLine(p: ApplianceProcess, event: string): Promise<Line> {
  for (let i = 0; i < 100; i++) {
    const line = logLines(p).find((l) => l.event === event);
    if (line) return line;
    await sleep(50);
  }
  throw new Error(`no ${event} line:\n${p.stderr}`);
}

async function putAndCp(p: ApplianceProcess): Promise<void> {
  const base = p.url;
  const put = await withDeadline(
    10_000,
    (signal) => request(objectUrl(base, "a"), { method: "PUT", body: "x".repeat(10_000), signal }),
  );
  assert.equal(put.status, 201, put.text);
  const cp = await withDeadline(
    10_000,
    (signal) => request(`${base}/v1/admin/cp`, { method: "POST", headers: adminAuth(p), signal }),
  );
  assert.equal(cp.status, 200, cp.text);
}

Deno.test("log: startup, cp.committed at debug, and the stop, as JSON lines on stderr", async () => {
  await withTempDir("refsync-log-", async (dir) => {
    const src = await spawnAppliance({
      dataDir: dir,
      args: ["--cp-interval", "0", "--log-level", "debug"],
    });
    try {
      const started = await waitForLine(src, "appliance.started");
      assert.equal(started.level, "info");
      assert.equal(started.role, "source");
      assert.equal(started.data, dir);
      assert.equal(started.url, src.url);
      assert.equal(typeof started.ts, "string");
      await putAndCp(src);
      const cp = await waitForLine(src, "cp.committed");
      assert.equal(cp.level, "debug");
      assert.equal(cp.cp, 1);
      // 10,000 bytes are three data blocks; one catalog leaf.
      assert.deepEqual(cp.bytes, { data: 3 * 4096, meta: 4096 });
      assert.equal(typeof cp.durationMs, "number");
    } finally {
      const { status } = await src.stop();
      assert.equal(status.code, 0);
    }
    const events = logLines(src).map((l) => l.event);
    assert.deepEqual(events.slice(-2), ["appliance.stopping", "appliance.stopped"]);

    // At the default level a CP says nothing.
    const quiet = await spawnAppliance({ dataDir: `${dir}/quiet`, args: ["--cp-interval", "0"] });
    try {
      await putAndCp(quiet);
    } finally {
      await quiet.stop();
    }
    const lines = logLines(quiet);
    assert.deepEqual(lines.filter((l) => l.event === "cp.committed"), []);
    assert.ok(lines.some((l) => l.event === "appliance.started"), quiet.stderr);
  });
});

Deno.test("log: a generated pair token is shown once, in the listening line of the start that made it", async () => {
  await withTempDir("refsync-token-", async (dir) => {
    const first = await spawnAppliance({ role: "dest", dataDir: `${dir}/dest` });
    await first.stop();
    const token = Deno.readTextFileSync(`${dir}/dest/pair-token`).trim();
    assert.match(token, /^[0-9a-f]{32}$/);
    assert.equal(listeningLines(first)[0].token, token);
    assert.equal(
      logLines(first).find((l) => l.event === "token.generated")?.path,
      `${dir}/dest/pair-token`,
    );
    assert.ok(!first.stderr.includes(token), "the token is in a log line");

    const second = await spawnAppliance({ role: "dest", dataDir: `${dir}/dest` });
    await second.stop();
    assert.equal(listeningLines(second)[0].token, undefined);
    assert.ok(!second.stdout.includes(token) && !second.stderr.includes(token));

    // `pair` the same: both appliances in one process, the token in DATA/dest/pair-token.
    const pair1 = await spawnAppliance({ role: "pair", dataDir: `${dir}/pair` });
    await pair1.stop();
    const pairToken = Deno.readTextFileSync(`${dir}/pair/dest/pair-token`).trim();
    assert.deepEqual(listeningLines(pair1).map((l) => [l.role, l.token]), [
      ["destination", undefined],
      ["source", pairToken],
    ]);
    assert.ok(logLines(pair1).some((l) => l.event === "pair.ready"), pair1.stderr);
    const pair2 = await spawnAppliance({ role: "pair", dataDir: `${dir}/pair` });
    await pair2.stop();
    assert.ok(!pair2.stdout.includes(pairToken) && !pair2.stderr.includes(pairToken));
  });
});

/**
 * The handshake with real processes: a pairing that cannot work is refused
 * (connected: false, the reason in stats and in one `mirror.refused` error
 * line), no write is logged meanwhile (503 at once, naming the cause), and
 * every refusal is retried: once the cause is gone the pair recovers by
 * itself, without a restart.
 *
 * 1. a wrong `--token`: reported at startup; the destination restarted with
 *    that token on its port is then taken up;
 * 2. a destination holding another volume: replaced by an empty one on its
 *    port, it is taken up;
 * 3. the old source's data started as the destination of the promoted box:
 *    refused at the handshake (pair generations differ), never half-connected.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { copyDir, withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import {
  adminCp,
  assertSameDigest,
  bearer,
  call,
  callJson,
  eventually,
  logEvents,
  mirrorOf,
  type MirrorStats,
  spawnDest,
  spawnMirroredSource,
  spawnPair,
  statsOf,
  stopAll,
} from "./pair.ts";

/** Bound of a recovery: refusals are retried at most 30 s apart. */
const RECOVERY_MS = 45_000;
const SOURCE_ARGS = ["--cp-interval", "0", "--sync-timeout", "20000"];

/** Waits until the source reports the mirror not connected, with a reason matching `why`. */
function refused(src: ApplianceProcess, why: RegExp): Promise<MirrorStats> {
  return eventually("the source reports the refusal", async () => {
    const m = await mirrorOf(src);
    if (m.connected || !why.test(String(m.lastError))) throw new Error(JSON.stringify(m));
    return m;
  });
}

/** A PUT while refused: 503 at once (not after --sync-timeout), naming the cause; nothing logged. */
async function assertWriteRefused(src: ApplianceProcess, why: RegExp): Promise<void> {
  const before = (await statsOf(src)).lsn as { last: number };
  const t0 = performance.now();
  const put = await callJson<{ error: string; message: string }>(
    objectUrl(src.url, "while/refused"),
    { method: "PUT", body: "refused" },
    30_000,
  );
  const ms = performance.now() - t0;
  assert.equal(put.status, 503, `PUT while refused: ${put.status} ${put.text}`);
  assert.match(put.json.message, why);
  assert.ok(ms < 10_000, `PUT while refused took ${Math.round(ms)} ms: it must not wait`);
  const after = (await statsOf(src)).lsn as { last: number };
  assert.equal(after.last, before.last, "a refused write is not logged");
  const g = await call(objectUrl(src.url, "while/refused"));
  assert.equal(g.status, 404, `the refused write reads ${g.status}`);
}

/** The pair works again by itself: a PUT is acknowledged, a CP commits on both sides. */
async function assertRecovered(src: ApplianceProcess, dst: ApplianceProcess): Promise<void> {
  await eventually("the source takes the destination up again", async () => {
    const put = await call(objectUrl(src.url, "after/recovery"), {
      method: "PUT",
      body: "recovered",
    });
    return put.status === 201 ? true : undefined;
  }, { ms: RECOVERY_MS, attempts: 200, pauseMs: 250 });
  const m = await mirrorOf(src);
  assert.equal(m.connected, true, `stats after recovery: ${JSON.stringify(m)}`);
  assert.equal(m.lastError, null);
  await adminCp(src);
  await assertSameDigest(src, dst, "after recovery");
  const g = await call(objectUrl(dst.url, "after/recovery"));
  assert.equal(g.text, "recovered");
}

Deno.test("mirror handshake: a wrong token is refused loudly at startup, then taken up without a restart", async () => {
  await withTempDir("refsync-handshake-token-", async (tmp) => {
    let dst: ApplianceProcess | null = null;
    let src: ApplianceProcess | null = null;
    try {
      dst = await spawnDest(`${tmp}/dest`, "the-destination-token");
      src = await spawnMirroredSource(`${tmp}/source`, dst.url, "a-wrong-token", SOURCE_ARGS);
      const m = await refused(src, /token/);
      assert.match(String(m.lastError), /401/);
      const lines = await eventually("a mirror.refused line", () => {
        const l = logEvents(src!, "mirror.refused");
        return Promise.resolve(l.length > 0 ? l : undefined);
      }, { ms: 5000 });
      assert.equal(lines[0].level, "error");
      assert.match(String(lines[0].reason), /token/);
      await assertWriteRefused(src, /token/);
      assert.equal(m.link, "refused");
      assert.equal(m.state, "out-of-sync");

      // The operator restarts the destination with the token the source has.
      const port = dst.port;
      await dst.stop();
      dst = await spawnDest(`${tmp}/dest`, "a-wrong-token", [], port);
      await assertRecovered(src, dst);
      // Each transition once: one refusal (retries are not logged), then one connection.
      assert.equal(logEvents(src, "mirror.refused").length, 1, src.stderr);
      assert.equal(logEvents(src, "mirror.connected").length, 1, src.stderr);
    } finally {
      await stopAll(src, dst);
    }
  });
});

Deno.test("mirror handshake: a destination holding another volume is refused, its replacement taken up", async () => {
  await withTempDir("refsync-handshake-volume-", async (tmp) => {
    const other = await spawnPair(`${tmp}/other`, { sourceArgs: ["--cp-interval", "0"] });
    let dst: ApplianceProcess | null = other.dst;
    let src: ApplianceProcess | null = null;
    try {
      const put = await call(objectUrl(other.src.url, "x"), { method: "PUT", body: "other" });
      assert.equal(put.status, 201);
      await adminCp(other.src);
      await other.src.stop();

      src = await spawnMirroredSource(`${tmp}/source`, dst.url, other.token, SOURCE_ARGS);
      await refused(src, /another volume/);
      await assertWriteRefused(src, /another volume/);

      // The wrong box is replaced by an empty destination on the same port.
      const port = dst.port;
      await dst.stop();
      dst = await spawnDest(`${tmp}/fresh`, other.token, [], port);
      await assertRecovered(src, dst);
      const [line] = logEvents(src, "mirror.refused");
      assert.match(String(line?.reason), /another volume/, src.stderr);
    } finally {
      await stopAll(src, dst, other.src);
    }
  });
});

Deno.test("mirror handshake: the old source's data as destination of the promoted box is refused, never half-connected", async () => {
  await withTempDir("refsync-handshake-generation-", async (tmp) => {
    const pair = await spawnPair(`${tmp}/first`, { sourceArgs: ["--cp-interval", "0"] });
    let oldAsDest: ApplianceProcess | null = null;
    let promoted: ApplianceProcess | null = null;
    try {
      const put = await call(objectUrl(pair.src.url, "a"), { method: "PUT", body: "one" });
      assert.equal(put.status, 201);
      await adminCp(pair.src);
      const p = await call(`${pair.dst.url}/v1/admin/promote`, {
        method: "POST",
        headers: bearer(pair.token),
      }, 60_000);
      assert.equal(p.status, 200, `promote: ${p.status} ${p.text}`);
      await pair.stop();

      // The old source's volume and log are started as the destination of the promoted box.
      await copyDir(`${tmp}/first/source/log`, `${tmp}/old-as-dest/log`);
      await Deno.copyFile(`${tmp}/first/source/volume.dat`, `${tmp}/old-as-dest/volume.dat`);
      oldAsDest = await spawnDest(`${tmp}/old-as-dest`, pair.token);
      const destBefore = await statsOf(oldAsDest);
      promoted = await spawnMirroredSource(`${tmp}/first/dest`, oldAsDest.url, pair.token, [
        ...SOURCE_ARGS,
      ]);
      const m = await refused(promoted, /pair generation 1, this source 2/);
      assert.equal(m.link, "refused");
      assert.equal(m.state, "out-of-sync");
      const lines = logEvents(promoted, "mirror.refused");
      assert.equal(lines.length, 1, promoted.stderr);
      assert.match(String(lines[0].reason), /pair generation/);
      await assertWriteRefused(promoted, /pair generation/);
      // Nothing reached the refused destination: its log and CP are as they were.
      const destAfter = await statsOf(oldAsDest);
      assert.deepEqual(destAfter.lsn, destBefore.lsn, "the refused destination's log");
      assert.deepEqual(destAfter.cp, destBefore.cp, "the refused destination's CP");
    } finally {
      await stopAll(promoted, oldAsDest, pair.src, pair.dst);
    }
  });
});

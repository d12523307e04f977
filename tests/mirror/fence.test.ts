/**
 * A source fenced while it runs (real processes): the destination is promoted
 * while the source is up, then stalled (SIGSTOP) so that a write to the old
 * source is logged and applied there but never acknowledged, and a CP is asked
 * meanwhile. Once the old source learns of the promotion:
 *
 * 1. the write in flight is set aside in `DATA/quarantine/` (named in the
 *    `mirror.fenced` log line), never readable nor listed — no CP committed it;
 * 2. every acknowledged write stays readable;
 * 3. every later write and delete answers 403 `fenced`, naming the promotion,
 *    and changes nothing;
 * 4. all of this holds after the old source's restart.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import {
  adminCp,
  bearer,
  call,
  callJson,
  eventually,
  listAll,
  logEvents,
  mirrorOf,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
} from "./pair.ts";

const SYNC_TIMEOUT_MS = 2000;

Deno.test("mirror fence: a write in flight at the promotion is set aside, never served, not after a restart", async () => {
  await withTempDir("refsync-fence-", async (tmp) => {
    const token = "fence-" + crypto.randomUUID();
    const srcArgs = ["--cp-interval", "0", "--sync-timeout", String(SYNC_TIMEOUT_MS)];
    let dst: ApplianceProcess | null = null;
    let src: ApplianceProcess | null = null;
    let stopped = false;
    try {
      dst = await spawnDest(`${tmp}/dest`, token, ["--cp-interval", "0"]);
      src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, srcArgs);
      const kept = { "in/cp": "acknowledged and in a CP", "in/log": "acknowledged, in the log" };
      let put = await call(objectUrl(src.url, "in/cp"), { method: "PUT", body: kept["in/cp"] });
      assert.equal(put.status, 201, `PUT in/cp: ${put.status} ${put.text}`);
      await adminCp(src);
      put = await call(objectUrl(src.url, "in/log"), { method: "PUT", body: kept["in/log"] });
      assert.equal(put.status, 201, `PUT in/log: ${put.status} ${put.text}`);

      const promoted = await call(`${dst.url}/v1/admin/promote`, {
        method: "POST",
        headers: bearer(token),
      }, 60_000);
      assert.equal(promoted.status, 200, `promote: ${promoted.status} ${promoted.text}`);

      // The promoted box stalls: the old source logs and applies a write, and waits.
      Deno.kill(dst.pid, "SIGSTOP");
      stopped = true;
      const lsnBefore = (await statsOf(src)).lsn as { last: number };
      const lost = "written to the old source after the promotion: never acknowledged";
      const inFlight = call(objectUrl(src.url, "lost"), { method: "PUT", body: lost }, 30_000);
      await eventually("the old source logs the write", async () => {
        const lsn = (await statsOf(src!)).lsn as { last: number };
        return lsn.last > lsnBefore.last ? true : undefined;
      });
      // A CP asked now must not commit the unacknowledged write.
      const cp = await call(`${src.url}/v1/admin/cp`, { method: "POST" }, 30_000);
      assert.notEqual(cp.status, 200, `CP with an unacknowledged write: ${cp.text}`);
      const answer = await inFlight;
      assert.equal(answer.status, 503, `the write in flight: ${answer.status} ${answer.text}`);
      Deno.kill(dst.pid, "SIGCONT");
      stopped = false;

      // It learns of the promotion: the write in flight is set aside, never to be served...
      await eventually("the unacknowledged write is set aside", async () => {
        const g = await call(objectUrl(src!.url, "lost"));
        if (g.status !== 404) throw new Error(`GET lost: ${g.status} ${g.text}`);
        return true;
      }, { ms: 10_000 });
      // ... and its writes are refused for good (403, not 503: not to be retried).
      await eventually("a write to the fenced source answers 403", async () => {
        const r = await call(objectUrl(src!.url, "refused"), { method: "PUT", body: "x" }, 20_000);
        if (r.status !== 403) throw new Error(`${r.status} ${r.text}`);
        return true;
      });
      const fenced = await mirrorOf(src);
      assert.equal(fenced.state, "fenced");
      assert.match(String(fenced.lastError), /promoted/);
      assert.equal(fenced.connected, false);

      const check = async (when: string) => {
        const g = await call(objectUrl(src!.url, "lost"));
        assert.equal(
          g.status,
          404,
          `${when}: the unacknowledged write reads ${g.status} ${g.text}`,
        );
        for (const [key, body] of Object.entries(kept)) {
          const k = await call(objectUrl(src!.url, key));
          assert.equal(k.status, 200, `${when}: acknowledged ${key}: ${k.status}`);
          assert.equal(k.text, body, `${when}: acknowledged ${key}`);
        }
        const listed = (await listAll(src!.url)).map((o) => o.key);
        assert.deepEqual(listed, Object.keys(kept).sort(), `${when}: listed keys`);
        for (
          const [what, key, init] of [
            ["PUT", "refused", { method: "PUT", body: "refused" }],
            ["DELETE", "in/cp", { method: "DELETE" }],
          ] as const
        ) {
          const r = await callJson<{ error: string; message: string }>(
            objectUrl(src!.url, key),
            init,
            20_000,
          );
          assert.equal(r.status, 403, `${when}: ${what} ${key}: ${r.status} ${r.text}`);
          assert.equal(r.json.error, "fenced");
          assert.match(r.json.message, /promoted/, `${when}: ${what}: ${r.json.message}`);
          assert.equal(r.headers.get("Retry-After"), null, `${when}: a fencing is not retried`);
        }
        const refused = await call(objectUrl(src!.url, "refused"));
        assert.equal(refused.status, 404, `${when}: the refused PUT reads ${refused.status}`);
        const stillThere = await call(objectUrl(src!.url, "in/cp"));
        assert.equal(stillThere.status, 200, `${when}: the refused DELETE deleted in/cp`);
      };
      await check("fenced");

      // The tail was set aside in a quarantine file named in the log line, frames intact.
      const line = logEvents(src, "mirror.fenced");
      assert.equal(line.length, 1, `one mirror.fenced line: ${src.stderr}`);
      assert.equal(line[0].level, "error");
      const file = String(line[0].quarantine);
      assert.equal(file, fenced.quarantine?.file, "stats and log name the same file");
      assert.ok(file.startsWith(`${tmp}/source/quarantine/`), `quarantine file ${file}`);
      const held = new TextDecoder().decode(await Deno.readFile(file));
      assert.ok(held.includes(lost), "the quarantine file holds the write set aside");

      // The promoted box never saw any of it.
      for (const key of ["lost", "refused"]) {
        const g = await call(objectUrl(dst.url, key));
        assert.equal(g.status, 404, `promoted: ${key} answers ${g.status}`);
      }

      await src.stop();
      src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, srcArgs);
      await check("after a restart");
      assert.equal((await mirrorOf(src)).state, "fenced");
    } finally {
      if (stopped && dst) Deno.kill(dst.pid, "SIGCONT");
      await stopAll(src, dst);
    }
  });
});

/**
 * An old source pointed at the appliance promoted over it, after that one was
 * restarted as a source (its data directory is a source's now), is fenced:
 * the promoted side answers `GET /v1/repl/state` as a source too. Before, a
 * source answered that with 404, which the old source took for an
 * unreachable destination: under `--sync-policy available` it then
 * acknowledged writes locally, a split brain.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, spawnAppliance, withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import {
  adminCp,
  bearer,
  call,
  callJson,
  eventually,
  mirrorOf,
  spawnMirroredSource,
  spawnPair,
  stopAll,
} from "./pair.ts";

Deno.test("an old source meeting the promoted side restarted as a source is fenced, not out of sync", async () => {
  await withTempDir("refsync-promoted-source-", async (dir) => {
    const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
    let promoted: ApplianceProcess | null = null;
    let old: ApplianceProcess | null = null;
    try {
      const put = await call(objectUrl(pair.src.url, "a"), { method: "PUT", body: "one" });
      assert.equal(put.status, 201, put.text);
      await adminCp(pair.src);
      await pair.src.kill();
      const promote = await callJson(`${pair.dst.url}/v1/admin/promote`, {
        method: "POST",
        headers: bearer(pair.token),
      });
      assert.equal(promote.status, 200, promote.text);
      const port = pair.dst.port;
      await pair.dst.stop();
      promoted = await spawnAppliance({
        dataDir: `${dir}/dest`,
        args: ["--cp-interval", "0", "--token", pair.token, "--port", String(port)],
      });
      const state = await callJson(`${promoted.url}/v1/repl/state`, {
        headers: bearer(pair.token),
      });
      assert.equal(state.status, 200, state.text);
      assert.equal(state.json.promoted, true);
      assert.equal(state.json.pairGeneration, 2);
      const repl = await call(`${promoted.url}/v1/repl/log`, {
        method: "POST",
        headers: bearer(pair.token),
        body: "x",
      });
      assert.equal(repl.status, 409, repl.text);

      old = await spawnMirroredSource(`${dir}/source`, promoted.url, pair.token, [
        ...["--cp-interval", "0", "--sync-policy", "available", "--sync-timeout", "1000"],
      ]);
      const refused = await call(objectUrl(old.url, "b"), { method: "PUT", body: "split brain?" });
      assert.equal(refused.status, 403, `${refused.status} ${refused.text}`);
      const m = await eventually("fenced", async () => {
        const s = await mirrorOf(old!);
        return s.state === "fenced" ? s : undefined;
      }, { ms: 10_000, attempts: 100, pauseMs: 100 });
      assert.match(String(m.lastError), /promoted/);
      const missing = await call(objectUrl(old.url, "b"));
      assert.equal(missing.status, 404, missing.text);
    } finally {
      await stopAll(old, promoted, pair.src, pair.dst);
    }
  });
});

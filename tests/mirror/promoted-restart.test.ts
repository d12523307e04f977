/**
 * A promoted destination is a source from then on, whatever command restarts
 * it: its usual `dest` command is refused with the command to use (it must
 * never come back as a read-only mirror), and `source` serves everything it
 * held, including the writes it replayed at the promotion.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ApplianceStartError, spawnAppliance, withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { adminCp, bearer, call, callJson, spawnDest, spawnPair, stopAll } from "./pair.ts";

Deno.test("promoted destination: restarted as dest it is refused with the command to use; as source it serves", async () => {
  await withTempDir("refsync-promoted-", async (dir) => {
    const pair = await spawnPair(dir, { sourceArgs: ["--cp-interval", "0"] });
    let promoted = null;
    try {
      for (const key of ["a", "b"]) {
        const put = await call(objectUrl(pair.src.url, key), {
          method: "PUT",
          body: `in cp ${key}`,
        });
        assert.equal(put.status, 201, put.text);
      }
      await adminCp(pair.src);
      // Acknowledged, in the destination's log, not in a CP: the promotion replays it.
      const late = await call(objectUrl(pair.src.url, "late"), { method: "PUT", body: "log only" });
      assert.equal(late.status, 201, late.text);
      await pair.src.stop();
      const promote = await callJson(`${pair.dst.url}/v1/admin/promote`, {
        method: "POST",
        headers: bearer(pair.token),
      });
      assert.equal(promote.status, 200, promote.text);
      await pair.dst.stop();
      const promotion = pair.dst.stderr.split("\n").filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l)).find((l) => l.event === "promotion");
      assert.equal(promotion?.level, "info", pair.dst.stderr);
      assert.equal(promotion?.pairGeneration, 2);

      const asDest = await spawnDest(`${dir}/dest`, pair.token).then(
        async (p) => {
          await p.kill();
          return null;
        },
        (e) => e,
      );
      assert.ok(
        asDest instanceof ApplianceStartError,
        `the promoted box came back as a destination`,
      );
      assert.equal(asDest.status.code, 1);
      const role = JSON.parse(Deno.readTextFileSync(`${dir}/dest/role`));
      assert.ok(
        asDest.stderr.includes(
          `${dir}/dest was promoted to a source on ${role.promotedAt}; ` +
            `start it with \`refsync source --data ${dir}/dest\``,
        ),
        asDest.stderr,
      );

      promoted = await spawnAppliance({ dataDir: `${dir}/dest`, args: ["--cp-interval", "0"] });
      for (const [key, text] of [["a", "in cp a"], ["b", "in cp b"], ["late", "log only"]]) {
        const got = await call(objectUrl(promoted.url, key));
        assert.equal(got.status, 200, `${key}: ${got.status} ${got.text}`);
        assert.equal(got.text, text);
      }
      const put = await call(objectUrl(promoted.url, "new"), { method: "PUT", body: "taken" });
      assert.equal(put.status, 201, put.text);
      await adminCp(promoted);
    } finally {
      await stopAll(pair.src, pair.dst, promoted);
    }
  });
});

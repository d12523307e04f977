/**
 * The destination's verify and repair routes refuse bad requests with a clear
 * status and JSON `{error, message}` (the pair token in front of them is the
 * app's `/v1/repl/*` check).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { registerVerifyRoutes } from "../../src/edge-dest/verify-routes.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { silentLogger } from "../../src/logging/mod.ts";
import { readDigestStream } from "../../src/protocol/verify/mod.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 20, maxObjectBytes: 1 << 30, mirror: true };

Deno.test("verify routes: a bad cp, a CP it is not at, a repair without or over its length", async () => {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, OPTS);
    try {
      const app = new Hono();
      app.onError(errorHandler());
      registerVerifyRoutes(app, store, (c) => c.req.raw.body, silentLogger);
      const cases: Array<[string, RequestInit, number, string, RegExp]> = [
        ["/v1/repl/verify", {}, 400, "bad_request", /\?cp=N/],
        ["/v1/repl/verify?cp=x", {}, 400, "bad_request", /\?cp=N/],
        ["/v1/repl/verify?cp=4", {}, 409, "conflict", /at CP 0, not CP 4/],
        ["/v1/repl/repair?cp=0", { method: "POST" }, 411, "length_required", /Content-Length/],
        [
          "/v1/repl/repair?cp=0",
          { method: "POST", headers: { "Content-Length": String(257 * 4100) } },
          413,
          "too_large",
          /at most 1049600 \(256 blocks\)/,
        ],
        [
          "/v1/repl/repair?cp=1",
          { method: "POST", body: new Uint8Array(0) },
          409,
          "conflict",
          /at CP 0/,
        ],
      ];
      for (const [path, init, status, error, message] of cases) {
        const res = await app.request(path, init);
        const body = await res.json();
        assert.equal(res.status, status, `${path}: ${JSON.stringify(body)}`);
        assert.equal(body.error, error, path);
        assert.match(body.message, message, path);
      }
      const ok = await app.request("/v1/repl/verify?cp=0");
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("Content-Type"), "application/octet-stream");
      const { header, records } = await readDigestStream(ok.body!);
      assert.equal(header.cp, 0);
      assert.deepEqual(await Array.fromAsync(records), []);
    } finally {
      await store.close();
    }
  });
});

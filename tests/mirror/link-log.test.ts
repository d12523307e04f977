/**
 * The source says when it loses and regains its destination (issue 8, item
 * 11): the destination SIGKILLed, a write then gets 503 and the source logs
 * one `mirror.lost` with the cause; the destination restarted on its port,
 * the source logs one `mirror.reconnected` by itself and writes succeed again.
 *
 * @module
 */
import assert from "node:assert/strict";
import { withTempDir } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { call, eventually, logEvents, spawnDest, spawnPair, stopAll } from "./pair.ts";

Deno.test("mirror link: losing and regaining the destination are logged once each", async () => {
  await withTempDir("refsync-link-log-", async (dir) => {
    const pair = await spawnPair(dir, { sourceArgs: ["--sync-timeout", "1500"] });
    let dst = pair.dst;
    try {
      const first = await call(objectUrl(pair.src.url, "before"), { method: "PUT", body: "a" });
      assert.equal(first.status, 201, first.text);
      assert.equal(logEvents(pair.src, "mirror.lost").length, 0);

      await dst.kill();
      const down = await call(objectUrl(pair.src.url, "down"), { method: "PUT", body: "b" });
      assert.equal(down.status, 503, down.text);
      const lost = await eventually(
        "mirror.lost is logged",
        () =>
          Promise.resolve(logEvents(pair.src, "mirror.lost")).then((l) => l.length ? l : undefined),
      );
      assert.equal(lost[0].level, "warn");
      assert.equal(typeof lost[0].cause, "string");

      dst = await spawnDest(`${dir}/dest`, pair.token, [], dst.port);
      await eventually("writes succeed again", async () => {
        const put = await call(objectUrl(pair.src.url, "after"), { method: "PUT", body: "c" });
        if (put.status !== 201 && put.status !== 200) throw new Error(put.text);
        return put.status;
      });
      const back = logEvents(pair.src, "mirror.reconnected");
      assert.equal(back.length, 1, pair.src.stderr.slice(-2000));
      assert.equal(back[0].level, "info");
      // Retries while it was down are not logged as further losses.
      assert.equal(logEvents(pair.src, "mirror.lost").length, 1);
    } finally {
      await stopAll(pair.src, dst);
    }
  });
});

/**
 * A promotion and the replication requests under way never overlap: the
 * gate refuses new ones and waits for the ones under way, and a log batch
 * whose body is still arriving stops at the frames read so far. Without it a
 * batch received across a promotion appended its records after the promoted
 * image was replayed from the log: records in the promoted side's log that
 * its image lacks, under LSNs its own writes take next.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PromotionGate } from "../../src/edge-dest/promotion-gate.ts";
import { isError } from "../../src/errors/mod.ts";
import { putFrames } from "../storage/log/helpers.ts";
import { memoryDest, PEER } from "../support/memory-dest.ts";

const TOKEN = "promotion-gate-token";

Deno.test("promotion gate: refuses requests while a promotion runs, which waits for those under way", async () => {
  const gate = new PromotionGate();
  let finish!: () => void;
  let stopped = false;
  const under = gate.enter((signal) => {
    signal.addEventListener("abort", () => stopped = true);
    return new Promise<string>((resolve) => finish = () => resolve("done"));
  });
  let promoted = false;
  const promotion = gate.promote(() => {
    promoted = true;
    return Promise.resolve("promoted");
  });
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(stopped, "the request under way was told");
  assert.equal(promoted, false, "the promotion waits for it");
  await assert.rejects(gate.enter(() => Promise.resolve(1)), (e) => isError(e, "conflict"));
  finish();
  assert.equal(await under, "done");
  assert.equal(await promotion, "promoted");
  assert.equal(gate.size, 0);
  // A failed promotion opens the gate again.
  await assert.rejects(gate.promote(() => Promise.reject(new Error("no disk (test)"))), /no disk/);
  assert.equal(await gate.enter(() => Promise.resolve(2)), 2);
});

Deno.test("promotion gate: a log batch arriving across a promotion keeps the frames read before it, and no more", async () => {
  const { dest, handler } = await memoryDest(TOKEN);
  try {
    const a = crypto.getRandomValues(new Uint8Array(5000));
    const b = crypto.getRandomValues(new Uint8Array(6000));
    let pulls = 0;
    let more!: () => void;
    const secondFrame = new Promise<void>((resolve) => more = resolve);
    // Record 1, then a pause (the link is slow, or the source died mid-batch), then record 2.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        pulls++;
        if (pulls === 1) return controller.enqueue(putFrames(1, [a]));
        await secondFrame;
        controller.enqueue(putFrames(2, [b]));
        controller.close();
      },
    });
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const batch = Promise.resolve(
      handler()(
        new Request("http://dest.sim/v1/repl/log", { method: "POST", headers: auth, body }),
        PEER,
      ),
    );
    for (let i = 0; i < 200 && pulls < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(pulls, 2, "record 1 was read; the body waits for record 2");

    const promoted = await handler()(
      new Request("http://dest.sim/v1/admin/promote", { method: "POST", headers: auth }),
      PEER,
    );
    assert.equal(promoted.status, 200, await promoted.clone().text());
    await promoted.body?.cancel();
    more(); // record 2 arrives after the promotion: too late
    const answer = await batch;
    assert.equal(answer.status, 409);
    assert.match((await answer.json()).message, /being promoted/);

    const store = dest.store;
    assert.equal(store.isMirror, false);
    assert.equal(store.log.lastLsn, 1, "record 1 is in the promoted log; record 2 never");
    assert.equal(store.stat("k1")?.size, a.length, "and in the promoted image");
    assert.equal(store.stat("k2"), null);
  } finally {
    await dest.close();
  }
});

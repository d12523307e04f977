/**
 * Log batches are received one at a time. Two can arrive together: an old
 * connection's last batch beside the new connection's first (the destination
 * closes the old one only when the new one has authenticated), or a late
 * duplicate. Received at once, the later one appended its records while the
 * earlier waited for its fdatasync, and the earlier then answered for records
 * that were not durable (an invariant's 500; found by the simulator on its
 * log stream, seed 239 trial 51).
 *
 * @module
 */
import assert from "node:assert/strict";
import { MemoryFileSystem } from "../../src/storage/fs/memory.ts";
import { putFrames } from "../storage/log/helpers.ts";
import { memoryDest, PEER } from "../support/memory-dest.ts";

const TOKEN = "log-route-turns-token";

Deno.test("log route: a batch arriving while the one before waits for its fdatasync is taken after it", async () => {
  // fdatasyncs complete at once, or, while `hold`, one by one when the test lets them.
  let hold = true;
  const waiting: Array<() => void> = [];
  const fs = new MemoryFileSystem({
    schedule: (done) => hold ? waiting.push(done) : queueMicrotask(done),
  });
  const { dest, handler } = await memoryDest(TOKEN, fs);
  const post = (frames: Uint8Array) =>
    Promise.resolve(
      handler()(
        new Request("http://dest.sim/v1/repl/log", {
          method: "POST",
          headers: { Authorization: `Bearer ${TOKEN}` },
          body: frames as Uint8Array<ArrayBuffer>,
        }),
        PEER,
      ),
    );
  const until = async (done: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 2));
    assert.ok(done(), what);
  };
  try {
    const first = post(putFrames(1, [new Uint8Array(100).fill(1)]));
    await until(() => waiting.length === 1, "record 1 is written and waits for its fdatasync");
    const second = post(putFrames(2, [new Uint8Array(100).fill(2)]));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(dest.store.log.lastLsn, 1, "record 2 waits for the batch before to be answered");
    waiting.shift()!(); // record 1 is durable
    const a = await first;
    assert.equal(a.status, 200, await a.clone().text());
    assert.deepEqual(await a.json(), { lastLsn: 1 });
    hold = false;
    for (const done of waiting.splice(0)) done();
    const b = await second;
    assert.equal(b.status, 200, await b.clone().text());
    assert.deepEqual(await b.json(), { lastLsn: 2 });
    assert.equal(dest.store.log.durableLsn, 2);
  } finally {
    hold = false;
    for (const done of waiting.splice(0)) done();
    await dest.close();
  }
});

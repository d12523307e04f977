/**
 * The handshake's `lastLsn` is what the destination holds durably. A source
 * takes it as acknowledged (its forwarder resolves the writers waiting up to
 * it), so a record written but still waiting for its fdatasync — a log
 * request the source gave up on (its deadline passed) and whose handshake
 * came meanwhile — must not be in it: a crash there loses a write the source
 * acknowledged.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MemoryLink, memoryReplicaClient } from "../../src/edge-source/mirror/memory-client.ts";
import { systemClock } from "../../src/runtime/clock.ts";
import { MemoryFileSystem } from "../../src/storage/fs/memory.ts";
import { putFrames } from "../storage/log/helpers.ts";
import { memoryDest } from "../support/memory-dest.ts";

const TOKEN = "repl-state-durable-token";

Deno.test("repl state: lastLsn leaves out records still waiting for their fdatasync", async () => {
  // fdatasyncs complete at once, or, while `hold`, when the test lets them.
  let hold = false;
  const waiting: Array<() => void> = [];
  const release = () => {
    hold = false;
    for (const done of waiting.splice(0)) done();
  };
  const fs = new MemoryFileSystem({
    schedule: (done) => hold ? waiting.push(done) : queueMicrotask(done),
  });
  const { dest, handler } = await memoryDest(TOKEN, fs);
  const link = new MemoryLink({ clock: systemClock, target: handler });
  const client = memoryReplicaClient(link, "http://dest.sim", TOKEN);
  let sent: Promise<number> | null = null;
  try {
    assert.equal((await client.state()).lastLsn, 0);
    hold = true;
    sent = client.sendFrames(putFrames(1, [new Uint8Array([1, 2, 3])]));
    for (let i = 0; i < 200 && waiting.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(waiting.length > 0, "record 1 is written and waits for its fdatasync");
    const state = await client.state();
    assert.equal(dest.store.log.durableLsn, 0);
    assert.equal(
      state.lastLsn,
      0,
      "record 1 is not durable: a source would take it as acknowledged",
    );
    release();
    assert.equal(await sent, 1);
    assert.equal((await client.state()).lastLsn, 1);
  } finally {
    release();
    await sent?.catch(() => {});
    await dest.close();
  }
});

/**
 * The forwarder's outage policy (`--sync-policy`), on a fake destination and
 * the simulator's clock: strict writes get 503 after --sync-timeout and the
 * log stays behind until the destination has them; available writes are
 * acknowledged locally (`false`) after --sync-timeout, then at once while out
 * of sync, and wait for the destination again once it caught up from the log.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError, RefsyncError } from "../../../src/errors/mod.ts";
import type { SyncPolicy } from "../../../src/protocol/mirror-state/mod.ts";
import { newWireStats } from "../../../src/protocol/cp-sync/stats.ts";
import { NvLog } from "../../../src/storage/log/mod.ts";
import {
  type ForwarderTransport,
  LogForwarder,
} from "../../../src/edge-source/mirror/log-forwarder.ts";
import { SimClock } from "../../../sim/clock.ts";
import { advance, settle } from "../../support/sim-time.ts";
import { bytes, put, withTempDir } from "../../storage/log/helpers.ts";

const SYNC_TIMEOUT_MS = 2000;

/** A destination that can be down, refuse, or answer; it holds what it was sent. */
class FakeDest implements ForwarderTransport {
  mode: "up" | "down" | "refusing" = "up";
  held = 0;
  sends = 0;

  connect(): Promise<number> {
    if (this.mode === "down") return Promise.reject(unreachable());
    if (this.mode === "refusing") {
      return Promise.reject(new RefsyncError("conflict", "another volume"));
    }
    return Promise.resolve(this.held);
  }

  send(batch: () => Uint8Array): Promise<number> {
    this.sends++;
    if (this.mode !== "up") return Promise.reject(unreachable());
    const frames = batch();
    const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
    for (let at = 0; at < frames.length; at += view.getUint32(at + 4, true)) {
      this.held = Number(view.getBigUint64(at + 8, true));
    }
    return Promise.resolve(this.held);
  }
}

function unreachable(): RefsyncError {
  return new RefsyncError("unavailable", "destination unreachable: connection refused");
}

type Outcome<T> = { value: T } | { error: unknown } | null;

/** How a promise has settled so far (null: not yet), without waiting for it. */
function track<T>(p: Promise<T>): () => Outcome<T> {
  let outcome: Outcome<T> = null;
  p.then((value) => (outcome = { value }), (error) => (outcome = { error }));
  return () => outcome;
}

/** The error a tracked promise was rejected with, or null. */
function errorOf<T>(o: Outcome<T>): unknown {
  return o !== null && "error" in o ? o.error : null;
}

async function withForwarder(
  policy: SyncPolicy,
  fn: (ctx: { fwd: LogForwarder; dest: FakeDest; log: NvLog; sim: SimClock }) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const sim = new SimClock();
    const dest = new FakeDest();
    const fwd = new LogForwarder(log, dest, {
      syncTimeoutMs: SYNC_TIMEOUT_MS,
      wire: newWireStats(),
      policy,
      clock: sim.process(),
    });
    try {
      fwd.start();
      await advance(sim, 10);
      assert.equal(fwd.link, "connected");
      await fn({ fwd, dest, log, sim });
    } finally {
      const stopped = fwd.stop();
      await advance(sim, 2000);
      await stopped;
      await log.close();
    }
  });
}

let seed = 0;
async function write(log: NvLog) {
  return await log.append([put(`k${++seed}`, bytes(100, seed))]);
}

Deno.test("sync policy strict: past --sync-timeout a write gets 503, and the log is behind until the destination has it", async () => {
  await withForwarder("strict", async ({ fwd, dest, log, sim }) => {
    assert.equal(await fwd.forward(await write(log)), true, "held by the destination");
    dest.mode = "down";
    const w = track(fwd.forward(await write(log)));
    await advance(sim, SYNC_TIMEOUT_MS - 100);
    assert.equal(w(), null, "still waiting before --sync-timeout");
    await advance(sim, 200);
    assert.ok(isError(errorOf(w()), "unavailable"), String(errorOf(w())));
    assert.equal(fwd.outOfSync, null, "strict never stops waiting");
    assert.equal(fwd.behindLsn, 2);
    assert.equal(fwd.logInSync, false);
    // The next write waits its full --sync-timeout again.
    const again = track(fwd.forward(await write(log)));
    await advance(sim, 100);
    assert.equal(again(), null);
    dest.mode = "up";
    await advance(sim, 1500);
    assert.deepEqual(again(), { value: true });
    assert.equal(dest.held, 3, "the 503'd record reached the destination from the log");
    assert.equal(fwd.logInSync, true);
  });
});

Deno.test("sync policy available: past --sync-timeout writes are acknowledged locally, then without waiting, until the destination caught up", async () => {
  await withForwarder("available", async ({ fwd, dest, log, sim }) => {
    assert.equal(await fwd.forward(await write(log)), true);
    dest.mode = "down";
    const first = track(fwd.forward(await write(log)));
    const holds = track(fwd.waitAcked(2, SYNC_TIMEOUT_MS * 10)); // a CP waiting for the mirror
    await advance(sim, SYNC_TIMEOUT_MS - 100);
    assert.equal(first(), null, "it waits --sync-timeout first");
    await advance(sim, 200);
    assert.deepEqual(first(), { value: false }, "acknowledged on local durability");
    assert.deepEqual(holds(), { value: false }, "the waiting CP is released too");
    assert.match(String(fwd.outOfSync), /within --sync-timeout \(2000 ms\).*unreachable/);
    assert.equal(fwd.logInSync, false);
    // Out of sync: nothing waits for the destination, not a write, a CP or an admission.
    for (let i = 0; i < 10; i++) {
      const w = track(fwd.forward(await write(log)));
      await settle();
      assert.deepEqual(w(), { value: false }, `write ${i} waited`);
    }
    const cp = track(fwd.waitAcked(12, SYNC_TIMEOUT_MS));
    const admitted = track(fwd.admit(SYNC_TIMEOUT_MS));
    await settle();
    assert.deepEqual(cp(), { value: false });
    assert.deepEqual(admitted(), { value: undefined });
    assert.equal(fwd.behindLsn, 12);
    assert.equal(dest.held, 1);
    // Back: the forwarder catches up from the log, and writes wait for the destination again.
    dest.mode = "up";
    await advance(sim, 1500);
    assert.equal(dest.held, 12, "every record written meanwhile reached the destination");
    assert.equal(fwd.outOfSync, null);
    assert.equal(fwd.logInSync, true);
    const sends = dest.sends;
    const after = track(fwd.forward(await write(log)));
    await advance(sim, 10);
    assert.deepEqual(after(), { value: true }, "held by the destination: in sync again");
    assert.ok(dest.sends > sends);
  });
});

Deno.test("sync policy available: a refusal puts it out of sync at once; strict refuses the write at once", async () => {
  for (const policy of ["available", "strict"] as const) {
    await withForwarder(policy, async ({ fwd, dest, log, sim }) => {
      dest.mode = "refusing";
      // A failed send reconnects, and the handshake refuses.
      const w = track(fwd.forward(await write(log)));
      await advance(sim, 200);
      assert.equal(fwd.link, "refused");
      const admitted = track(fwd.admit(SYNC_TIMEOUT_MS));
      await settle();
      if (policy === "available") {
        assert.deepEqual(w(), { value: false });
        assert.deepEqual(admitted(), { value: undefined });
        assert.match(String(fwd.outOfSync), /refuses this source: another volume/);
      } else {
        assert.equal(w(), null, "strict: the logged write waits --sync-timeout");
        assert.match(String(errorOf(admitted())), /refuses this source/);
        await advance(sim, SYNC_TIMEOUT_MS);
        assert.ok(isError(errorOf(w()), "unavailable"), String(w()));
      }
    });
  }
});

Deno.test("sync policy available: with no handshake within --sync-timeout a write is admitted out of sync", async () => {
  await withForwarder("available", async ({ fwd, dest, log, sim }) => {
    dest.mode = "down";
    await write(log);
    // A write that fails to send takes the link down; a new write's admission waits for it.
    const w = track(fwd.forward(await write(log)));
    await advance(sim, 100);
    assert.equal(fwd.link, "down");
    const admitted = track(fwd.admit(SYNC_TIMEOUT_MS));
    await advance(sim, SYNC_TIMEOUT_MS - 200);
    assert.equal(admitted(), null, "it waits for the handshake first");
    await advance(sim, 400);
    assert.deepEqual(admitted(), { value: undefined });
    assert.deepEqual(w(), { value: false });
  });
});

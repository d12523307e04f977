/**
 * The forwarder's paired assertion: it never takes an acknowledgement above
 * the last LSN it sent (nor, at a handshake, above the end of its log). A
 * destination that claims more would acknowledge writes it does not hold: the
 * pair stops, and every waiting write fails with an internal error. And an
 * acknowledgement below one before (the destination holds less than it
 * acknowledged: replaced, or restored from an older copy) is followed by a
 * handshake, which says from where to resend. And the memory a request
 * costs: its body is at most BATCH_BYTES of whole frames.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AssertionError } from "../../../src/assert.ts";
import { newWireStats } from "../../../src/protocol/cp-sync/stats.ts";
import { NvLog } from "../../../src/storage/log/mod.ts";
import {
  BATCH_BYTES,
  type ForwarderTransport,
  LogForwarder,
} from "../../../src/edge-source/mirror/log-forwarder.ts";
import { bytes, put, withTempDir } from "../../storage/log/helpers.ts";

/** A destination that answers with `ack(lastSentLsn)`. */
function transport(connectAck: number, ack: (sent: number) => number): ForwarderTransport {
  return {
    connect: () => Promise.resolve(connectAck),
    send: (batch) => {
      const frames = batch();
      const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
      let last = 0;
      for (let at = 0; at < frames.length; at += view.getUint32(at + 4, true)) {
        last = Number(view.getBigUint64(at + 8, true));
      }
      return Promise.resolve(ack(last));
    },
  };
}

async function forwardThree(t: ForwarderTransport): Promise<unknown> {
  let outcome: unknown = null;
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const fwd = new LogForwarder(log, t, { syncTimeoutMs: 5000, wire: newWireStats() });
    try {
      const records = await log.append([1, 2, 3].map((i) => put(`k${i}`, bytes(10, i))));
      fwd.start();
      outcome = await fwd.forward(records).then(() => "acknowledged", (e) => e);
    } finally {
      await fwd.stop();
      await log.close();
    }
  });
  return outcome;
}

Deno.test("forwarder: an acknowledgement of exactly what was sent acknowledges the writes", async () => {
  assert.equal(await forwardThree(transport(0, (sent) => sent)), "acknowledged");
});

Deno.test("forwarder: an acknowledgement above the last LSN sent is a broken invariant", async () => {
  const e = await forwardThree(transport(0, (sent) => sent + 1));
  assert.ok(e instanceof AssertionError, String(e));
  assert.match(e.message, /acknowledged LSN 4; the last LSN sent was 3/);
});

Deno.test("forwarder: a handshake claiming LSNs beyond this log is a broken invariant", async () => {
  const e = await forwardThree(transport(9, (sent) => sent));
  assert.ok(e instanceof AssertionError, String(e));
  assert.match(e.message, /holds LSN 9 after the handshake; this log ends at 3/);
});

Deno.test("forwarder: a renewal during a handshake is followed by another handshake", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    let connects = 0;
    let answer!: (held: number) => void;
    const t: ForwarderTransport = {
      ...transport(0, (sent) => sent),
      connect: () => {
        connects++;
        // The first handshake waits for the test; the ones after answer at once.
        return connects === 1 ? new Promise((resolve) => answer = resolve) : Promise.resolve(0);
      },
    };
    const fwd = new LogForwarder(log, t, { syncTimeoutMs: 5000, wire: newWireStats() });
    try {
      fwd.start();
      for (let i = 0; i < 50 && connects < 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(connects, 1);
      // The mirror learnt something the handshake under way may have missed (a CP deferred).
      fwd.renew("CP 3 deferred (test)");
      answer(0);
      for (let i = 0; i < 50 && connects < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(connects, 2, "a second handshake after the renewal");
      assert.equal(fwd.link, "connected");
    } finally {
      await fwd.stop();
      await log.close();
    }
  });
});

Deno.test("forwarder: queued frames go in full requests of at most BATCH_BYTES, in LSN order", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const sent: Array<{ bytes: number; lsns: number[] }> = [];
    const t = transport(0, (last) => last);
    const fwd = new LogForwarder(log, {
      connect: t.connect,
      send: (batch, records) => {
        sent.push({ bytes: batch().length, lsns: records!.map((r) => r.lsn) });
        return t.send(batch, records);
      },
    }, { syncTimeoutMs: 5000, wire: newWireStats() });
    try {
      // Frames of a little more than a quarter batch (at most a record's 1 MiB payload).
      const payload = Math.min(BATCH_BYTES / 4, 1 << 20);
      const records = await log.append(
        Array.from({ length: 20 }, (_, i) => put(`k${i}`, bytes(payload, i))),
      );
      const frame = records[0].frame.length;
      fwd.start();
      assert.equal(await fwd.forward(records), true);
      assert.deepEqual(sent.flatMap((s) => s.lsns), records.map((r) => r.lsn));
      for (const [i, s] of sent.entries()) {
        assert.ok(s.bytes <= BATCH_BYTES, `request ${i}: ${s.bytes} bytes`);
        if (i < sent.length - 1) assert.ok(s.bytes + frame > BATCH_BYTES, `request ${i} not full`);
      }
    } finally {
      await fwd.stop();
      await log.close();
    }
  });
});

Deno.test("forwarder: an acknowledgement below one before is followed by a handshake, and the log is sent again from what it holds", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    // A destination holding the log to `held`; a batch that does not follow it is answered with
    // `held`, as a reference frame it cannot resolve is (a whole frame's gap would be refused).
    let held = 0;
    let connects = 0;
    let sends = 0;
    const t: ForwarderTransport = {
      connect: () => {
        connects++;
        return Promise.resolve(held);
      },
      send: (batch) => {
        sends++;
        const frames = batch();
        const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
        if (Number(view.getBigUint64(8, true)) === held + 1) {
          for (let at = 0; at < frames.length; at += view.getUint32(at + 4, true)) {
            held = Number(view.getBigUint64(at + 8, true));
          }
        }
        // Answered a moment later, as over a network.
        return new Promise((resolve) => setTimeout(() => resolve(held), 1));
      },
    };
    const fwd = new LogForwarder(log, t, { syncTimeoutMs: 2000, wire: newWireStats() });
    try {
      fwd.start();
      const first = await log.append([1, 2, 3].map((i) => put(`k${i}`, bytes(10, i))));
      const acknowledged = (p: Promise<unknown>) => p.then(() => "acknowledged", String);
      assert.equal(await acknowledged(fwd.forward(first)), "acknowledged");
      assert.equal(connects, 1);
      held = 0; // its disk replaced while the link stayed up
      const sendsBefore = sends;
      const next = await log.append([put("k4", bytes(10, 4))]);
      assert.equal(await acknowledged(fwd.forward(next)), "acknowledged", "by the new disk");
      assert.equal(held, 4, "it was sent the whole log again");
      assert.equal(connects, 2, "one handshake after the acknowledgement of LSN 0");
      assert.ok(sends - sendsBefore <= 3, `${sends - sendsBefore} sends: no loop`);
      assert.equal(fwd.ackedLsn, 4);
    } finally {
      await fwd.stop();
      await log.close();
    }
  });
});

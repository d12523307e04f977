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
import { RefsyncError } from "../../../src/errors/mod.ts";
import { newWireStats } from "../../../src/protocol/cp-sync/stats.ts";
import { NvLog } from "../../../src/storage/log/mod.ts";
import {
  BATCH_BYTES,
  FencedError,
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

/** The LSNs of a batch of whole frames. */
function lsnsOf(frames: Uint8Array): number[] {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const lsns: number[] = [];
  for (let at = 0; at < frames.length; at += view.getUint32(at + 4, true)) {
    lsns.push(Number(view.getBigUint64(at + 8, true)));
  }
  return lsns;
}

/**
 * A destination behind a window of 2 (the log stream): batches are taken in
 * the order sent, each when the test releases it (or at once, `auto`); one
 * that does not follow what it holds is refused, as the receiver refuses a
 * gap; an LSN in `short` is answered short once (a reference it could not
 * resolve); `breakNext` fails the next release and every batch sent before it
 * is released, as a connection that breaks.
 */
class PipeDest implements ForwarderTransport {
  held = 0;
  connects = 0;
  batches: number[][] = [];
  short = new Set<number>();
  breakNext = false;
  auto = false;
  #pending: Array<() => void> = [];

  window = () => 2;

  connect = () => {
    this.connects++;
    return Promise.resolve(this.held);
  };

  send = (batch: () => Uint8Array) => {
    const lsns = lsnsOf(batch());
    this.batches.push(lsns);
    return new Promise<number>((resolve, reject) => {
      this.#pending.push(() => {
        if (this.breakNext) return reject(new RefsyncError("unavailable", "connection reset"));
        if (lsns[0] !== this.held + 1) {
          return reject(new RefsyncError("conflict", `LSN ${lsns[0]} does not follow`));
        }
        for (const lsn of lsns) {
          if (this.short.delete(lsn)) break;
          this.held = lsn;
        }
        resolve(this.held);
      });
      if (this.auto) setTimeout(() => this.release(), 1);
    });
  };

  get unanswered(): number {
    return this.#pending.length;
  }

  /** Answers the oldest batch (all of them when the connection breaks). */
  release(): void {
    if (this.breakNext) {
      for (const answer of this.#pending.splice(0)) answer();
      this.breakNext = false;
    } else this.#pending.shift()?.();
  }
}

/** Waits (10 ms steps, at most 2 s) until `done()`. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), `waited for ${what}`);
}

/** A forwarder over `dest`, its log, and `n` records to forward in turns. */
async function withPipe(
  dest: PipeDest,
  fn: (fwd: LogForwarder, log: NvLog, wire: ReturnType<typeof newWireStats>) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const wire = newWireStats();
    const fwd = new LogForwarder(log, dest, { syncTimeoutMs: 5000, wire });
    try {
      fwd.start();
      await fn(fwd, log, wire);
    } finally {
      dest.auto = true;
      while (dest.unanswered > 0) dest.release();
      await fwd.stop();
      await log.close();
    }
  });
}

const acknowledged = (p: Promise<unknown>) => p.then(() => "acknowledged", String);

/**
 * Forwards records 1-2, then record 3, each in its own batch: both in flight,
 * unanswered. Resolves with what their writers are answered, each in time.
 */
async function twoInFlight(
  fwd: LogForwarder,
  log: NvLog,
  dest: PipeDest,
): Promise<[Promise<string>, Promise<string>]> {
  const a = acknowledged(
    fwd.forward(await log.append([1, 2].map((i) => put(`a${i}`, bytes(10, i))))),
  );
  await until(() => dest.batches.length === 1, "the first batch");
  const b = acknowledged(fwd.forward(await log.append([put("b", bytes(10, 3))])));
  await until(() => dest.batches.length === 2, "the second batch, before the first answer");
  return [a, b];
}

Deno.test("forwarder: with a window of 2 the next batch goes before the last is answered, never a third", async () => {
  const dest = new PipeDest();
  await withPipe(dest, async (fwd, log, wire) => {
    const a = fwd.forward(await log.append([1, 2, 3].map((i) => put(`a${i}`, bytes(10, i)))));
    await until(() => dest.batches.length === 1, "the first batch");
    const b = fwd.forward(await log.append([put("b", bytes(10, 4))]));
    await until(() => dest.batches.length === 2, "the second batch, before the first answer");
    const c = fwd.forward(await log.append([put("c", bytes(10, 5))]));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(dest.batches.length, 2, "a third waits for the first answer");
    dest.release();
    assert.equal(await acknowledged(a), "acknowledged");
    assert.equal(fwd.ackedLsn, 3, "the first batch's answer, not the second's");
    await until(() => dest.batches.length === 3, "the third batch");
    dest.release();
    dest.release();
    assert.deepEqual(await Promise.all([acknowledged(b), acknowledged(c)]), [
      "acknowledged",
      "acknowledged",
    ]);
    assert.deepEqual(dest.batches, [[1, 2, 3], [4], [5]]);
    assert.equal(dest.held, 5);
    assert.equal(wire.logBatchesOverlapped, 2, "the second and third went before an answer");
  });
});

Deno.test("forwarder: a batch sent after a short answer is void; sending resumes after the acknowledged LSN, with no handshake", async () => {
  const dest = new PipeDest();
  dest.short.add(2); // LSN 2 cannot be rebuilt there: the answer acknowledges 1
  await withPipe(dest, async (fwd, log) => {
    const answers = await twoInFlight(fwd, log, dest);
    dest.auto = true;
    dest.release(); // short: 1
    dest.release(); // LSN 3 does not follow 1: refused
    assert.deepEqual(await Promise.all(answers), ["acknowledged", "acknowledged"]);
    assert.deepEqual(dest.batches, [[1, 2], [3], [2, 3]]);
    assert.equal(dest.held, 3);
    assert.equal(dest.connects, 1, "no handshake: a short answer is no failure");
    assert.equal(fwd.link, "connected");
  });
});

Deno.test("forwarder: a broken connection voids every batch on it; after a handshake the log goes again from what the destination holds", async () => {
  const dest = new PipeDest();
  await withPipe(dest, async (fwd, log) => {
    const answers = await twoInFlight(fwd, log, dest);
    dest.breakNext = true;
    dest.release();
    dest.auto = true;
    assert.deepEqual(await Promise.all(answers), ["acknowledged", "acknowledged"]);
    assert.deepEqual(dest.batches, [[1, 2], [3], [1, 2, 3]]);
    assert.equal(dest.held, 3);
    assert.equal(dest.connects, 2, "one handshake after the break");
  });
});

Deno.test("forwarder: a renewal with batches in flight waits for their answers; the handshake says what to send again", async () => {
  const dest = new PipeDest();
  await withPipe(dest, async (fwd, log) => {
    const answers = await twoInFlight(fwd, log, dest);
    fwd.renew("the destination's CP changed (test)");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(dest.connects, 1, "no handshake while batches are unanswered");
    dest.release(); // the first is taken
    dest.breakNext = true;
    dest.release(); // the second is lost
    dest.auto = true;
    assert.deepEqual(await Promise.all(answers), ["acknowledged", "acknowledged"]);
    assert.equal(dest.connects, 2, "one handshake, after both answers");
    assert.deepEqual(dest.batches, [[1, 2], [3], [3]], "the lost one again, nothing refused");
  });
});

Deno.test("forwarder: fenced, the writers of records the promoted side holds are answered as held; the rest are refused", async () => {
  // The destination took LSNs 1 and 2 and was promoted before its answer came back; LSN 3 it
  // never received. The handshake after the lost answer tells the fencing, and that it holds 2.
  const dest = new PipeDest();
  dest.connect = () => {
    dest.connects++;
    return dest.connects === 1
      ? Promise.resolve(0)
      : Promise.reject(new FencedError("promoted (test)", 2));
  };
  await withPipe(dest, async (fwd, log) => {
    const [held, lost] = await twoInFlight(fwd, log, dest);
    dest.breakNext = true;
    dest.release();
    assert.equal(await held, "acknowledged", "in the promoted history");
    assert.match(await lost, /promoted \(test\)/);
    assert.equal(fwd.ackedLsn, 2);
    assert.ok(fwd.fatal);
  });
});

Deno.test("forwarder: records logged before it started keep the log out of sync until the destination holds them", async () => {
  // The source ran alone (no destination yet) and acknowledged three writes; then its
  // destination was attached with nothing of them (a baseline's CP covered none).
  const dest = new PipeDest();
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    await log.append([1, 2, 3].map((i) => put(`a${i}`, bytes(10, i))));
    const fwd = new LogForwarder(log, dest, { syncTimeoutMs: 5000, wire: newWireStats() });
    try {
      fwd.start();
      await until(() => fwd.connected && dest.batches.length === 1, "connected, the log sent");
      assert.equal(fwd.logInSync, false, "in sync while the destination lacks acknowledged writes");
      dest.release();
      await until(() => fwd.ackedLsn === 3, "the destination holds them");
      assert.equal(fwd.logInSync, true);
    } finally {
      dest.auto = true;
      while (dest.unanswered > 0) dest.release();
      await fwd.stop();
      await log.close();
    }
  });
});

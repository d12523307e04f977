/**
 * The replication client seam: one contract run against each
 * implementation — HTTP to a destination listening on 127.0.0.1 (its log
 * batches on the log stream), and the in-memory link into the same
 * destination app, with and without its simulated log stream — then the
 * faults only the in-memory link has (partition, dropped answers, bodies cut
 * mid-way).
 */
import assert from "node:assert/strict";
import { isError, RefsyncError } from "../../../src/errors/mod.ts";
import { startDest } from "../../../src/edge-dest/server.ts";
import { HttpReplicaClient } from "../../../src/edge-source/mirror/http-client.ts";
import {
  type LinkPlan,
  MemoryLink,
  memoryReplicaClient,
} from "../../../src/edge-source/mirror/memory-client.ts";
import type { ReplicaClient } from "../../../src/edge-source/mirror/replica-client.ts";
import { createLogger, silentLogger } from "../../../src/logging/mod.ts";
import { putFrames } from "../../storage/log/helpers.ts";
import { encodeRepair } from "../../../src/protocol/verify/mod.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { authHeader } from "../../../src/protocol/auth/mod.ts";
import { newWireStats, type WireStats } from "../../../src/protocol/cp-sync/stats.ts";
import { type EncodedBody, LinkEncoder } from "../../../src/protocol/link-compress/mod.ts";
import { Prng } from "../../../src/runtime/random.ts";
import { destConfig, memoryDest } from "../../support/memory-dest.ts";

const TOKEN = "replica-client-token";

interface Subject {
  client: (token: string) => ReplicaClient;
  done(): Promise<void>;
}

function contract(name: string, make: () => Promise<Subject>) {
  Deno.test(`replica client (${name}): state, frames, repeats refused, reset, CP parts, verify, repair, token`, async () => {
    const { client, done } = await make();
    try {
      const c = client(TOKEN);
      const state = await c.state();
      assert.equal(state.cp, 0);
      assert.equal(state.lastLsn, 0);
      assert.equal(state.promoted, false);
      const one = new Uint8Array([1]);
      assert.equal(await c.sendFrames(putFrames(1, [one, one])), 2);
      assert.equal(await c.sendFrames(putFrames(3, [one])), 3);
      await assert.rejects(
        () => c.sendFrames(putFrames(2, [one])),
        (e) => isError(e, "conflict") && /repeat/.test((e as Error).message),
        "a repeat of a record the destination holds is refused",
      );
      // A reset names where the log ended when the source looked: a stale one cuts nothing.
      await assert.rejects(
        () => c.resetLog({ truncateAfter: 1, ifLastLsn: 5 }),
        (e) => isError(e, "conflict") && /stale log reset/.test((e as Error).message),
      );
      assert.equal((await c.state()).lastLsn, 3);
      const reset = await c.resetLog({ truncateAfter: 1, ifLastLsn: 3 });
      assert.equal(reset.lastLsn, 1);
      // The same reset delivered again after a newer record was acknowledged (a duplicate on
      // the network) must not take that record away.
      assert.equal(await c.sendFrames(putFrames(2, [one])), 2);
      await assert.rejects(
        () => c.resetLog({ truncateAfter: 1, ifLastLsn: 3 }),
        (e) => isError(e, "conflict"),
      );
      assert.equal((await c.state()).lastLsn, 2);
      // Batches sent before the one before is answered (the forwarder's window on a stream) are
      // taken in the order sent, each answered with what it made durable.
      const sent = [putFrames(3, [one]), putFrames(4, [one, one]), putFrames(6, [one])];
      assert.deepEqual(await Promise.all(sent.map((b) => c.sendFrames(b))), [3, 5, 6]);
      // The verify's calls: the (empty) digest list of CP 0, a CP it is not at, repairs.
      const digests = await c.verifyDigests(0);
      assert.equal(digests.header.cp, 0);
      assert.deepEqual(await Array.fromAsync(digests.records), []);
      await assert.rejects(
        () => c.verifyDigests(3),
        (e) => isError(e, "conflict") && /at CP 0, not CP 3/.test((e as Error).message),
      );
      const refused = await c.repair(0, encodeRepair([{ block: 5, bytes: new Uint8Array(4096) }]));
      assert.deepEqual(refused.repaired, []);
      assert.match(refused.refused[0]?.message ?? "", /block 5: not a block this side reaches/);
      await assert.rejects(
        () => c.repair(0, new Uint8Array(10)),
        (e) => isError(e, "conflict") && /records of 4100 bytes/.test((e as Error).message),
      );
      const bad = await c.sendCpPart(1, 0, true, new Uint8Array([1, 2, 3]));
      assert.equal(bad.status, 400, bad.message);
      await assert.rejects(() => client("wrong").state(), (e) => isError(e, "unauthorized"));
      c.close?.();
    } finally {
      await done();
    }
  });
}

contract("http", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refsync-client-" });
  const dest = await startDest(destConfig(dir, TOKEN), { logger: silentLogger });
  return {
    client: (token) => new HttpReplicaClient({ url: dest.url, token }),
    async done() {
      await dest.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

for (const stream of [false, true]) {
  contract(stream ? "memory, log stream" : "memory", async () => {
    const { dest, handler } = await memoryDest(TOKEN);
    return {
      client: (token) =>
        memoryReplicaClient(
          new MemoryLink({ clock: systemClock, target: handler }),
          "http://dest.sim",
          token,
          undefined,
          undefined,
          { stream },
        ),
      done: () => dest.close(),
    };
  });
}

Deno.test("memory link: a partition, a lost answer and a cut body fail the request", async () => {
  const { dest, handler } = await memoryDest(TOKEN);
  try {
    let plan: LinkPlan = { delayMs: 0, responseDelayMs: 0 };
    const link = new MemoryLink({ clock: systemClock, target: handler, faults: () => plan });
    const c = memoryReplicaClient(link, "http://dest.sim", TOKEN);
    const one = new Uint8Array([1]);
    link.partitioned = true;
    await assert.rejects(() => c.state(), (e) => isError(e, "unavailable"));
    link.partitioned = false;
    plan = { delayMs: 0, responseDelayMs: 0, dropResponse: true };
    await assert.rejects(() => c.sendFrames(putFrames(1, [one])), (e) => isError(e, "unavailable"));
    plan = { delayMs: 0, responseDelayMs: 0 };
    assert.equal((await c.state()).lastLsn, 1, "the lost answer's request was delivered");
    plan = { delayMs: 0, responseDelayMs: 0, cutBodyAt: 10 };
    await assert.rejects(() => c.sendFrames(putFrames(2, [one])), (e) => e instanceof RefsyncError);
    plan = { delayMs: 0, responseDelayMs: 0 };
    assert.equal((await c.state()).lastLsn, 1, "nothing of a cut body was appended");
    link.reset();
  } finally {
    await dest.close();
  }
});

/** The destination's `wire` counters (its stats). */
async function destWire(handler: () => Deno.ServeHandler): Promise<WireStats> {
  const res = await handler()(new Request("http://dest.sim/v1/admin/stats"), PEER);
  return (await res.json()).wire;
}

const PEER: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
};

/** `n` records of compressible text, from LSN `first`. */
function textFrames(first: number, n: number): Uint8Array {
  const text = (i: number) => new TextEncoder().encode(`{"i":${i},"event":"put","ok":true}\n`);
  return putFrames(first, Array.from({ length: n }, (_, i) => text(first + i)));
}

Deno.test("link compression: a request lost on the way starts a new epoch; nothing is refused after", async () => {
  const { dest, handler } = await memoryDest(TOKEN);
  try {
    let plan: LinkPlan = { delayMs: 0, responseDelayMs: 0 };
    const link = new MemoryLink({ clock: systemClock, target: handler, faults: () => plan });
    const wire = newWireStats();
    const c = memoryReplicaClient(link, "http://dest.sim", TOKEN, wire, new Prng(1));
    assert.equal(await c.sendFrames(textFrames(1, 20)), 20);
    plan = { delayMs: 0, responseDelayMs: 0, dropRequest: true };
    await assert.rejects(() => c.sendFrames(textFrames(21, 20)), (e) => isError(e, "unavailable"));
    plan = { delayMs: 0, responseDelayMs: 0 };
    // The compressor took the lost batch into its history, the destination never saw it: the
    // same epoch would be refused as out of order; the client sends in a new one.
    assert.equal(await c.sendFrames(textFrames(21, 20)), 40);
    // A lost answer: delivered, so the destination's context moved on with ours; a duplicate of
    // it arriving later is refused without ending the epoch.
    plan = { delayMs: 0, responseDelayMs: 0, dropResponse: true };
    await assert.rejects(() => c.sendFrames(textFrames(41, 20)), (e) => isError(e, "unavailable"));
    plan = { delayMs: 0, responseDelayMs: 0 };
    assert.equal((await c.state()).lastLsn, 60, "the lost answer's request was delivered");
    assert.equal(await c.sendFrames(textFrames(61, 20)), 80);
    const d = await destWire(handler);
    assert.equal(d.logFrames, 80);
    // Sent: 5 batches, one lost on the way and never received, one whose answer was lost.
    assert.equal(d.logBytesRaw, wire.logBytesRaw - textFrames(21, 20).length);
    assert.ok(wire.logBytes < 0.5 * wire.logBytesRaw, JSON.stringify(wire));
    link.reset();
  } finally {
    await dest.close();
  }
});

Deno.test("link compression: a duplicate delivered late is refused and the epoch goes on", async () => {
  const { dest, handler } = await memoryDest(TOKEN);
  try {
    let plan: LinkPlan = { delayMs: 0, responseDelayMs: 0 };
    const link = new MemoryLink({ clock: systemClock, target: handler, faults: () => plan });
    const c = memoryReplicaClient(link, "http://dest.sim", TOKEN, newWireStats(), new Prng(2));
    assert.equal(await c.sendFrames(textFrames(1, 5)), 5);
    plan = { delayMs: 0, responseDelayMs: 0, duplicateAfterMs: 0 };
    assert.equal(await c.sendFrames(textFrames(6, 5)), 10);
    plan = { delayMs: 0, responseDelayMs: 0 };
    await new Promise((resolve) => setTimeout(resolve, 20)); // the duplicate arrives, refused
    assert.equal(await c.sendFrames(textFrames(11, 5)), 15);
    link.reset();
  } finally {
    await dest.close();
  }
});

Deno.test("link compression: every corrupted byte of a compressed batch is refused, nothing appended", async () => {
  const { dest, handler } = await memoryDest(TOKEN);
  try {
    const post = (e: EncodedBody, body = e.body) =>
      handler()(
        new Request("http://dest.sim/v1/repl/log", {
          method: "POST",
          body,
          headers: { ...authHeader(TOKEN), ...e.headers },
        }),
        PEER,
      );
    const enc = new LinkEncoder({ random: new Prng(3) });
    try {
      const first = await enc.stream(textFrames(1, 10));
      assert.equal((await post(first)).status, 200);
      const e = await enc.stream(textFrames(11, 10));
      assert.equal(e.headers["Content-Encoding"], "zstd");
      const statuses = new Set<number>();
      for (let at = 0; at < e.body.length; at++) {
        enc.restart();
        // Each try in a fresh epoch holding the same history, so the flip is the only change.
        const base = await enc.stream(textFrames(1, 10));
        const again = await enc.stream(textFrames(11, 10));
        assert.deepEqual(again.body, e.body, "deterministic encoding");
        await (await post(base)).body?.cancel(); // a repeat of LSNs 1..10: refused, but decoded
        const bad = again.body.slice();
        bad[at] ^= 0x5a;
        const res = await post(again, bad);
        const text = await res.text();
        statuses.add(res.status);
        assert.ok(res.status === 400 || res.status === 409, `flip at ${at}: ${res.status} ${text}`);
        // Frames before the damaged one may be appended: they passed their own checks, so they
        // are the source's frames byte for byte, and nothing else is there.
        const held = dest.store.log.lastLsn;
        assert.ok(held >= 10 && held < 20, `flip at ${at}: log ends at ${held} (${text})`);
        const right = textFrames(11, 10);
        assert.deepEqual(
          dest.store.log.readFrames(11, 1 << 20),
          right.subarray(0, dest.store.log.readFrames(11, 1 << 20).length),
          `flip at ${at}: only the source's frames`,
        );
        if (held > 10) await dest.store.log.truncateAfter(10);
      }
      console.log(`statuses of ${e.body.length} flips: ${[...statuses].join(", ")}`);
    } finally {
      enc.close();
    }
  } finally {
    await dest.close();
  }
});

Deno.test("http client: log batches go on the announced log stream; one that cannot open falls back to HTTP and is not retried at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refsync-client-stream-" });
  const destLines: Array<Record<string, unknown>> = [];
  const dest = await startDest(destConfig(dir, TOKEN), {
    logger: createLogger({ sink: (l) => destLines.push(JSON.parse(l)) }),
  });
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = closed.addr.port;
  closed.close(); // nothing listens there now: a connection is refused
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ sink: (l) => lines.push(JSON.parse(l)) });
  const one = new Uint8Array([1]);
  const announcedWire = newWireStats();
  const announced = new HttpReplicaClient({ url: dest.url, token: TOKEN, wire: announcedWire });
  const wire = newWireStats();
  const blocked = new HttpReplicaClient({
    url: dest.url,
    token: TOKEN,
    wire,
    logStream: closedPort,
    logger,
  });
  try {
    // One source at a time (each handshake starts the destination's link epoch anew).
    await blocked.state();
    assert.equal(await blocked.sendFrames(putFrames(1, [one])), 1, "sent as an HTTP request");
    assert.equal(wire.logStreamBatches, 0);
    const warned = lines.filter((l) => l.event === "mirror.log_stream_unavailable");
    assert.equal(warned.length, 1, JSON.stringify(lines));
    assert.equal(warned[0].port, closedPort);
    // The next handshake, within the minute, does not wait on that port again.
    await blocked.state();
    assert.equal(await blocked.sendFrames(putFrames(2, [one])), 2);
    assert.equal(lines.filter((l) => l.event === "mirror.log_stream_unavailable").length, 1);
    const state = await announced.state();
    assert.equal(typeof state.logStreamPort, "number");
    assert.equal(await announced.sendFrames(putFrames(3, [one])), 3);
    // A look between batches (the mirror's, while the link is up) leaves the stream open.
    const opened = () => destLines.filter((l) => l.event === "log_stream.opened").length;
    assert.equal(opened(), 1);
    assert.equal((await announced.look()).lastLsn, 3);
    assert.equal(await announced.sendFrames(putFrames(4, [one])), 4);
    assert.equal(announcedWire.logStreamBatches, 2, "both on the stream");
    assert.equal(opened(), 1, "on the same connection");
  } finally {
    announced.close();
    blocked.close();
    await dest.close();
    await Deno.remove(dir, { recursive: true });
  }
});

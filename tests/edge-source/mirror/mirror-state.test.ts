/**
 * `mirror.state`, its log lines and `mirror.lag`, on a real store and a fake
 * destination, on the simulator's clock (available policy): in sync, out of
 * sync after --sync-timeout without the destination (writes acknowledged as
 * not mirrored), in sync again once it holds the log; the lag counts the
 * records, bytes and age of what it lacks, and nothing before a handshake
 * told what it holds (it used to count the whole log).
 *
 * @module
 */
import assert from "node:assert/strict";
import { RefsyncError } from "../../../src/errors/mod.ts";
import { Mirror } from "../../../src/edge-source/mirror/mirror.ts";
import type {
  CpPartAnswer,
  ReplicaClient,
} from "../../../src/edge-source/mirror/replica-client.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import type { DestState, LogReset } from "../../../src/protocol/handshake/mod.ts";
import { HEADER_SIZE, WireFrameParser } from "../../../src/protocol/log-frame/mod.ts";
import type { SyncPolicy } from "../../../src/protocol/mirror-state/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { SimClock } from "../../../sim/clock.ts";
import { advance } from "../../support/sim-time.ts";
import { bytesStream, withTempDir } from "../../storage/helpers.ts";
import { STORE_OPTS } from "../../storage/store_model.ts";

const SYNC_TIMEOUT_MS = 2000;

/** A destination holding our volume at our CP, and the log it was sent; it can be down. */
class FakeDest implements ReplicaClient {
  readonly url = "http://dest.test";
  down = false;
  held = 0;
  store: ObjectStore | null = null;

  state(): Promise<DestState> {
    if (this.down) return Promise.reject(unreachable());
    const sb = this.store!.superblock;
    return Promise.resolve({
      volumeId: sb.volumeId.toHex(),
      pairGeneration: sb.pairGeneration,
      cp: sb.cp,
      volumeDigest: sb.volumeDigest.toHex(),
      lsnCovered: sb.lsnCovered,
      firstLsn: 1,
      lastLsn: this.held,
      promoted: false,
      promotedAtLsn: null,
      catchUp: null,
    });
  }

  resetLog(_body: LogReset): Promise<DestState> {
    return this.state();
  }

  sendFrames(frames: Uint8Array): Promise<number> {
    if (this.down) return Promise.reject(unreachable());
    // Whole and reference frames (refs mode) alike: this destination only counts.
    new WireFrameParser().push(frames, (f) => this.held = f.header.lsn);
    return Promise.resolve(this.held);
  }

  sendCpPart(): Promise<CpPartAnswer> {
    return Promise.reject(new Error("no CPs in this test"));
  }

  beginCatchUp(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no catch-up here"));
  }

  sendCatchUpPart(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no catch-up here"));
  }

  verifyDigests(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no verify here"));
  }

  repair(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no repair here"));
  }
}

function unreachable(): RefsyncError {
  return new RefsyncError("unavailable", "destination http://dest.test unreachable: refused");
}

interface Ctx {
  mirror: Mirror;
  store: ObjectStore;
  dest: FakeDest;
  sim: SimClock;
  lines: Array<Record<string, unknown>>;
}

async function withMirror(
  dir: string,
  opts: { policy: SyncPolicy; destDown?: boolean },
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const sim = new SimClock();
  const clock = sim.process();
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: "debug", sink: (l) => lines.push(JSON.parse(l)) });
  const dest = new FakeDest();
  dest.down = opts.destDown ?? false;
  const mirror = new Mirror({
    url: dest.url,
    token: "t",
    syncTimeoutMs: SYNC_TIMEOUT_MS,
    policy: opts.policy,
    mode: "refs",
    quarantineDir: `${dir}/quarantine`,
    client: () => dest,
    clock,
    logger,
  });
  const store = await ObjectStore.open(dir, { ...STORE_OPTS, ...mirror.hooks, clock, logger });
  dest.store = store;
  dest.held = store.log.lastLsn; // it holds what we wrote before (a restart)
  mirror.attach(store);
  try {
    await advance(sim, 10);
    await fn({ mirror, store, dest, sim, lines });
  } finally {
    const closed = mirror.close();
    await advance(sim, 2000);
    await closed;
    await store.close();
  }
}

const transitions = (lines: Array<Record<string, unknown>>) =>
  lines.filter((l) => l.event === "mirror.state").map((l) => `${l.from} -> ${l.to}`);

function put(store: ObjectStore, key: string, n: number) {
  return store.write(key, bytesStream(new Uint8Array(n).fill(7)), { replace: true, offset: 0 });
}

Deno.test("mirror state: in sync, out of sync after --sync-timeout, in sync again; one line per change; the lag meanwhile", async () => {
  await withTempDir(async (dir) => {
    await withMirror(dir, { policy: "available" }, async ({ mirror, store, dest, sim, lines }) => {
      assert.equal(mirror.state, "in-sync");
      assert.deepEqual(transitions(lines), ["out-of-sync -> in-sync"]);
      assert.equal((await put(store, "a", 100)).mirrored, true);
      assert.deepEqual(mirror.lag, { records: 0, bytes: 0, seconds: 0, known: true });

      dest.down = true;
      let answered: boolean | null = null;
      put(store, "b", 1000).then((r) => (answered = r.mirrored));
      await advance(sim, SYNC_TIMEOUT_MS - 100);
      assert.equal(answered, null, "it waits for the destination first");
      assert.equal(mirror.state, "out-of-sync", "the link is down already");
      await advance(sim, 200);
      assert.equal(answered, false, "acknowledged on local durability");
      const lag = mirror.lag;
      assert.equal(lag.records, 1);
      assert.equal(lag.bytes, HEADER_SIZE + 1 + 1000);
      assert.ok(lag.seconds >= 2 && lag.seconds < 3, `the record is ~2 s old: ${lag.seconds}`);
      // Out of sync: the next write does not wait at all.
      const c = await put(store, "c", 10);
      assert.equal(c.mirrored, false);
      assert.equal(mirror.lag.records, 2);
      const stats = mirror.stats().mirror as Record<string, unknown>;
      assert.equal(stats.state, "out-of-sync");
      assert.equal(stats.link, "down");
      assert.equal(stats.policy, "available");
      assert.match(String(stats.lastError), /unreachable/);
      assert.equal(stats.progress, null);

      dest.down = false;
      await advance(sim, 1500);
      assert.equal(mirror.state, "in-sync");
      assert.equal(dest.held, store.log.lastLsn, "the destination got the log from the outage");
      assert.deepEqual(mirror.lag, { records: 0, bytes: 0, seconds: 0, known: true });
      assert.equal((mirror.stats().mirror as Record<string, unknown>).lastError, null);
      assert.equal((await put(store, "d", 10)).mirrored, true);
      assert.deepEqual(transitions(lines), [
        "out-of-sync -> in-sync",
        "in-sync -> out-of-sync",
        "out-of-sync -> in-sync",
      ]);
      const [, out, back] = lines.filter((l) => l.event === "mirror.state");
      assert.match(String(out.cause), /unreachable/);
      assert.equal(out.level, "warn");
      assert.equal(back.level, "info");
      assert.match(String(back.cause), /holds the log to LSN 3/);
    });
  });
});

Deno.test("mirror state strict: a 503'd write keeps the pair out of sync until the destination holds it", async () => {
  await withTempDir(async (dir) => {
    await withMirror(dir, { policy: "strict" }, async ({ mirror, store, dest, sim, lines }) => {
      assert.equal(mirror.state, "in-sync");
      dest.down = true;
      let failed: unknown = null;
      put(store, "b", 10).catch((e) => (failed = e));
      await advance(sim, SYNC_TIMEOUT_MS + 100);
      assert.match(String(failed), /not acknowledged/);
      assert.equal(mirror.state, "out-of-sync");
      dest.down = false;
      await advance(sim, 1500);
      assert.equal(mirror.state, "in-sync");
      assert.deepEqual(transitions(lines), [
        "out-of-sync -> in-sync",
        "in-sync -> out-of-sync",
        "out-of-sync -> in-sync",
      ]);
    });
  });
});

Deno.test("mirror lag: unknown (0) until a handshake told what the destination holds, not the whole log", async () => {
  await withTempDir(async (dir) => {
    // A first life writes records; the destination holds them all.
    await withMirror(dir, { policy: "strict" }, async ({ store }) => {
      for (let i = 0; i < 3; i++) assert.equal((await put(store, `k${i}`, 5000)).mirrored, true);
    });
    // Restarted with the destination down: what it lacks is not known yet.
    await withMirror(dir, { policy: "strict", destDown: true }, ({ mirror, store }) => {
      assert.ok(store.log.bytesAfter(0) > 15_000, "the log holds the first life's records");
      assert.deepEqual(mirror.lag, { records: 0, bytes: 0, seconds: 0, known: false });
      assert.equal(mirror.state, "out-of-sync");
      return Promise.resolve();
    });
  });
});

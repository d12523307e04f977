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
import { createLogger } from "../../../src/logging/mod.ts";
import { HEADER_SIZE } from "../../../src/protocol/log-frame/mod.ts";
import type { SyncPolicy } from "../../../src/protocol/mirror-state/mod.ts";
import type { ObjectStore } from "../../../src/storage/objects/store.ts";
import { advance } from "../../support/sim-time.ts";
import { bytesStream, withTempDir } from "../../storage/helpers.ts";
import { FakeDest, type FakeMirror, SYNC_TIMEOUT_MS, withFakeMirror } from "./fake-dest.ts";

interface Ctx extends FakeMirror {
  dest: FakeDest;
  lines: Array<Record<string, unknown>>;
}

function withMirror(
  dir: string,
  opts: { policy: SyncPolicy; destDown?: boolean },
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: "debug", sink: (l) => lines.push(JSON.parse(l)) });
  const dest = new FakeDest();
  dest.down = opts.destDown ?? false;
  return withFakeMirror(
    dir,
    dest,
    { policy: opts.policy, logger },
    (m) => fn({ ...m, dest, lines }),
  );
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

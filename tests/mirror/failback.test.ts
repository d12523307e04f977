/**
 * Failover, then failback, with real processes (issue 10 item 7). A mirrors
 * to B through a fault proxy; a few writes are acknowledged; the link goes
 * silent, a write is sent to A (logged there, never acknowledged) and A is
 * SIGKILLed. B is promoted and takes writes. Then A comes back with the one
 * command, `refsync dest --data DIR_A --rejoin`, and B is restarted as a
 * source with `--dest A`:
 *
 * - the pair reaches `in-sync` within a bound, by a resync from the CP the
 *   promotion started from (`wire.resyncBytes` below the bytes written since
 *   that CP plus a margin; no baseline);
 * - every write acknowledged by A before the failover and by B after it reads
 *   back from both (bytes, ETag, list), after a CP;
 * - the never-acknowledged write is readable nowhere, and it is in A's
 *   quarantine file.
 *
 * Twice: A's last CP synced to B (A holds the shared CP as its committed
 * one), and A having committed a CP that B never got (A holds the shared CP
 * as its previous one, and goes back to it). And under `--sync-policy
 * available`: writes A acknowledged out of sync, and its local CPs of them,
 * are lost by the failover; they are set aside in A's quarantine, never
 * served, and A (holding no CP of B's history) is replaced by a baseline.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { FaultProxy } from "../support/fault-proxy.ts";
import { objectUrl } from "../support/http.ts";
import { Model } from "../support/model.ts";
import { withDeadline } from "../support/timeout.ts";
import {
  adminCp,
  assertSameDigest,
  bearer,
  call,
  callJson,
  eventually,
  logEvents,
  mirrorOf,
  proxyLogStream,
  putRandomObject,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
  verifySides,
} from "./pair.ts";

const NEVER_ACKED = "never/acknowledged";
/** Bytes of A's image before the failover (8 objects of 1 MiB). */
const IMAGE_OBJECTS = 8;
const MIB = 1 << 20;

async function putBytes(
  base: string,
  model: Model,
  key: string,
  text: string,
  status = 201,
): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  const a = await call(objectUrl(base, key), { method: "PUT", body: bytes });
  assert.equal(a.status, status, `PUT ${key}: ${a.status} ${a.text}`);
  model.put(key, bytes);
}

async function lsnOf(p: ApplianceProcess): Promise<number> {
  return ((await statsOf(p)).lsn as { last: number }).last;
}

/** The two appliances of a failover and failback, A and B, and the proxy between them. */
class Sides {
  readonly token = "failback-" + crypto.randomUUID();
  readonly model = new Model();
  a: ApplianceProcess | null = null;
  b: ApplianceProcess | null = null;
  proxy: FaultProxy | null = null;

  constructor(readonly dirA: string, readonly dirB: string) {}

  /** A mirrors to B through the proxy; CPs only when asked (the test decides which CP each holds). */
  async start(sourceArgs: string[]): Promise<void> {
    this.b = await spawnDest(this.dirB, this.token, ["--cp-interval", "0"]);
    this.proxy = await FaultProxy.start(this.b.port);
    const stream = proxyLogStream(this.proxy, this.b);
    this.a = await spawnMirroredSource(this.dirA, this.proxy.url, this.token, [
      "--cp-interval",
      "0",
      ...stream.sourceArgs,
      ...sourceArgs,
    ]);
  }

  /** A is gone (killed by the caller): the proxy goes, B is promoted. */
  async failOver(): Promise<void> {
    await this.proxy!.close();
    this.proxy = null;
    const promoted = await callJson(`${this.b!.url}/v1/admin/promote`, {
      method: "POST",
      headers: bearer(this.token),
    });
    assert.equal(promoted.status, 200, `promote: ${promoted.status} ${promoted.text}`);
  }

  /**
   * The failback as the README says: B stopped, A started with `dest --rejoin`
   * (checked before B comes: `check`), B restarted as a source with `--dest A`;
   * resolves once the pair is in sync, with the catch-up B started.
   */
  async failBack(check: (a: ApplianceProcess) => Promise<void>): Promise<Record<string, unknown>> {
    await this.b!.stop(5000);
    this.b = null;
    this.a = await spawnDest(this.dirA, this.token, ["--rejoin", "--cp-interval", "0"]);
    const role = JSON.parse(await Deno.readTextFile(`${this.dirA}/role`));
    assert.equal(role.role, "destination");
    assert.equal(role.rejoin?.fromGeneration, 1);
    assert.deepEqual((await statsOf(this.a)).rejoin, role.rejoin);
    await check(this.a);
    this.b = await spawnMirroredSource(this.dirB, this.a.url, this.token, ["--cp-interval", "0"]);
    await eventually("the pair is in sync again", async () => {
      return (await mirrorOf(this.b!)).state === "in-sync" ? true : undefined;
    }, { ms: 60_000, pauseMs: 100, attempts: 600 });
    const started = logEvents(this.b, "mirror.catch_up_started");
    assert.equal(started.length, 1, JSON.stringify(started));
    const rejoined = JSON.parse(await Deno.readTextFile(`${this.dirA}/role`));
    assert.equal(rejoined.rejoin, undefined, "the rejoin mark is cleared at the commit");
    assert.equal((await statsOf(this.a)).rejoin, null);
    return started[0];
  }

  /** B's catch-up counters. */
  async wire(): Promise<{ resyncBytes: number; baselineBytes: number }> {
    return (await statsOf(this.b!)).wire as unknown as {
      resyncBytes: number;
      baselineBytes: number;
    };
  }

  /**
   * One more write to B and a CP: both sides hold the same image, and every
   * acknowledged write reads back from both; nothing the model deleted does.
   */
  async assertSame(context: string): Promise<void> {
    await putBytes(this.b!.url, this.model, "acked/b-after", "by B after the failback");
    await adminCp(this.b!);
    await eventually("A commits B's CP", async () => {
      const [x, y] = [await statsOf(this.a!), await statsOf(this.b!)];
      return x.cp.committed === y.cp.committed ? true : undefined;
    }, { ms: 20_000 });
    await assertSameDigest(this.b!, this.a!, context);
    await verifySides(this.model, { b: this.b!, a: this.a! }, context);
  }

  /** Every key's write is in A's one quarantine file. */
  async assertQuarantined(keys: string[]): Promise<void> {
    const files = [...Deno.readDirSync(`${this.dirA}/quarantine`)].map((e) => e.name);
    assert.equal(files.length, 1, `quarantine: ${files}`);
    const aside = await Deno.readFile(`${this.dirA}/quarantine/${files[0]}`);
    for (const key of keys) {
      const k = new TextEncoder().encode(key);
      assert.ok(
        aside.some((_, i) => k.every((c, j) => aside[i + j] === c)),
        `${key} is in A's quarantine file`,
      );
    }
  }

  async stop(): Promise<void> {
    await this.proxy?.close();
    await stopAll(this.b, this.a);
  }
}

async function failback(tmp: string, unsyncedCp: boolean): Promise<void> {
  const sides = new Sides(`${tmp}/a`, `${tmp}/b`);
  const { model, token } = sides;
  try {
    await sides.start(["--sync-timeout", "30000"]);
    const [a, b] = [sides.a!, sides.b!];
    for (let i = 0; i < IMAGE_OBJECTS; i++) {
      const put = await putRandomObject(a.url, model, `image/${i}`, 100 + i, MIB);
      assert.equal(put.status, 201, `PUT image/${i}: ${put.status} ${put.text}`);
    }
    const shared = await adminCp(a);
    await assertSameDigest(a, b, "before the failover");
    // Acknowledged (so in B's log), in no CP of B.
    for (let i = 0; i < 3; i++) await putBytes(a.url, model, `acked/a-${i}`, `by A ${i}`);
    assert.equal((await mirrorOf(a)).state, "in-sync");

    // The link goes silent (a dead router): nothing reaches B from now on.
    sides.proxy!.mode = "blackhole";
    let cpRun: Promise<unknown> | null = null;
    if (unsyncedCp) {
      // A commits a CP of the acknowledged writes locally; its sync to B never arrives.
      cpRun = callJson(`${a.url}/v1/admin/cp`, { method: "POST", headers: bearer(token) }, 60_000)
        .catch((e) => e);
      await eventually("A commits a CP locally", async () => {
        return (await statsOf(a)).cp.committed === shared.cp + 1 ? true : undefined;
      }, { ms: 20_000 });
    }
    const lsnBefore = await lsnOf(a);
    const inFlight = withDeadline(60_000, async (signal) => {
      const res = await fetch(objectUrl(a.url, NEVER_ACKED), {
        method: "PUT",
        body: new TextEncoder().encode("never acknowledged: must not be readable anywhere"),
        signal,
      });
      return { status: res.status, text: await res.text() };
    }).catch((e: unknown) => e);
    await eventually("A logs the write in flight", async () => {
      return (await lsnOf(a)) > lsnBefore ? true : undefined;
    }, { ms: 20_000 });
    await a.kill();
    const answer = await inFlight;
    assert.ok(
      answer instanceof Error,
      `the write in flight was answered: ${JSON.stringify(answer)}`,
    );
    await cpRun;
    model.delete(NEVER_ACKED);

    // Failover: B is promoted and takes writes.
    await sides.failOver();
    let writtenSince = 0;
    for (let i = 0; i < 2; i++) {
      const put = await putRandomObject(b.url, model, `after/${i}`, 200 + i, 64 * 1024);
      assert.equal(put.status, 201, `PUT after/${i} to B: ${put.status} ${put.text}`);
      writtenSince += 64 * 1024;
    }
    await putBytes(b.url, model, "image/0", "replaced on B", 200);
    writtenSince += 4096;
    model.delete("image/1");
    const del = await call(objectUrl(b.url, "image/1"), { method: "DELETE" });
    assert.equal(del.status, 204, `DELETE on B: ${del.status} ${del.text}`);
    await adminCp(b);

    // Failback: A becomes B's destination with one command; B is a source mirroring to it.
    const started = await sides.failBack(async (rejoining) => {
      // It serves its committed CP only: the write in its log tail is not readable.
      const early = await call(objectUrl(rejoining.url, NEVER_ACKED));
      assert.equal(early.status, 404, `the rejoining A: GET ${NEVER_ACKED}: ${early.status}`);
    });
    assert.equal(started.kind, "resync", "a resync from the shared CP, not a baseline");
    assert.equal(started.baseCp, shared.cp);
    const wire = await sides.wire();
    assert.equal(wire.baselineBytes, 0, "no baseline");
    assert.ok(wire.resyncBytes > 0, "a resync was sent");
    // Written since the shared CP: the acknowledged writes of A (in B's promotion CP), B's
    // writes, plus their maps and catalog nodes: a margin of 64 KiB, far below the 8 MiB image.
    const bound = writtenSince + 3 * 4096 + 64 * 1024;
    assert.ok(
      wire.resyncBytes < bound,
      `resync sent ${wire.resyncBytes} bytes, more than ${bound} (image ${IMAGE_OBJECTS * MIB})`,
    );
    const setAside = logEvents(sides.a!, "store.rejoin_set_aside");
    assert.equal(setAside.length, 1, JSON.stringify(setAside));
    assert.equal(setAside[0].firstLsn, lsnBefore + 1, "the tail above B's promotion LSN");

    await sides.assertSame(unsyncedCp ? "failback (unsynced CP)" : "failback");
    // The divergent tail: in A's quarantine, never served.
    await sides.assertQuarantined([NEVER_ACKED]);
  } finally {
    await sides.stop();
  }
}

Deno.test("failback: A's last CP was synced; A rejoins by a resync from it", async () => {
  await withTempDir("refsync-failback-", (tmp) => failback(tmp, false));
});

Deno.test("failback: A committed a CP B never got; A goes back to the shared CP and resyncs", async () => {
  await withTempDir("refsync-failback-unsynced-", (tmp) => failback(tmp, true));
});

Deno.test("failback: under --sync-policy available, writes acknowledged out of sync and the CPs of them are set aside; a baseline replaces A's history", async () => {
  await withTempDir("refsync-failback-available-", async (tmp) => {
    const sides = new Sides(`${tmp}/a`, `${tmp}/b`);
    const { model } = sides;
    try {
      await sides.start(["--sync-policy", "available", "--sync-timeout", "1000"]);
      const [a, b] = [sides.a!, sides.b!];
      for (let i = 0; i < 4; i++) {
        const put = await putRandomObject(a.url, model, `image/${i}`, 300 + i, MIB);
        assert.equal(put.status, 201, `PUT image/${i}: ${put.status} ${put.text}`);
      }
      await adminCp(a);
      await assertSameDigest(a, b, "before the failover");
      await putBytes(a.url, model, "acked/in-sync", "in B's log");

      // The link goes silent: A acknowledges on local durability (out of sync), and commits CPs
      // of those writes locally (deferred): a history B never gets.
      sides.proxy!.mode = "blackhole";
      const lost: string[] = [];
      for (let i = 0; i < 3; i++) {
        const key = `lost/${i}`;
        const res = await call(objectUrl(a.url, key), {
          method: "PUT",
          body: new TextEncoder().encode(`acknowledged out of sync ${i}`),
        });
        assert.equal(res.status, 201, `PUT ${key}: ${res.status} ${res.text}`);
        assert.equal(res.headers.get("refsync-mirror"), "out-of-sync", key);
        lost.push(key);
        model.delete(key);
        await adminCp(a);
      }
      await a.kill();
      await sides.failOver();
      await putBytes(b.url, model, "after/b", "written on B");
      await adminCp(b);

      const started = await sides.failBack(() => Promise.resolve());
      assert.equal(
        started.kind,
        "baseline",
        "A holds CP 1 neither as its committed CP nor as its previous one",
      );
      const wire = await sides.wire();
      assert.ok(wire.baselineBytes > 0);
      assert.equal(wire.resyncBytes, 0);
      await sides.assertSame("failback (available)");
      // What the failover lost is kept for the operator, never served.
      await sides.assertQuarantined(lost);
    } finally {
      await sides.stop();
    }
  });
});

/**
 * Failover with real processes: several concurrent clients write to the
 * source (CPs every 50 ms), the source is SIGKILLed at a seeded random moment,
 * the destination is promoted, and then
 *
 * 1. every write the source acknowledged (2xx) reads back from the promoted
 *    destination with its bytes; a write in flight at the kill is either there
 *    whole or not at all (never half of a multi-record PUT, never torn);
 * 2. the promoted destination takes writes itself (it is a source now);
 * 3. the old source, restarted on its data dir and pointed at the promoted
 *    appliance, is fenced: its writes fail with 403 `fenced` naming the
 *    promotion (no split brain), and nothing it refused appears anywhere — not
 *    on the promoted appliance, not on the old source, not after its restart.
 *
 * Replay a failure with `REFSYNC_SEED=<seed> deno test -A tests/mirror/promote.test.ts`.
 *
 * @module
 */
import { writeRange } from "../../sim/model.ts";
import { firstDifference } from "../support/bytes.ts";
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { adminAuth, withTempDir } from "../support/appliance.ts";
import { etagHex } from "../support/blake3.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import { sleep } from "../support/timeout.ts";
import {
  call,
  callJson,
  digestOf,
  listAll,
  spawnDest,
  spawnMirroredSource,
  statsOf,
  stopAll,
} from "./pair.ts";

const KiB = 1024;
const MiB = 1024 * 1024;
const CLIENTS = 4;
const KEYS_PER_CLIENT = 6;
/** Bounds of each client loop: operations and wall time. */
const MAX_OPS = 3000;
const MAX_CLIENT_MS = 20_000;

/** One key's state: what was acknowledged, and what an unanswered write may have left. */
interface KeyState {
  acked: Uint8Array | null;
  /** Set when a write on this key got no clear answer (the source died, or 503). */
  maybe?: { state: Uint8Array | null; op: string };
}

interface ClientReport {
  ops: number;
  acked: number;
  reads: number;
  unknown: string | null;
}

/**
 * One client: sequential operations on the keys it owns, until its first
 * unanswered write (then it stops: its key states stay exact), the op cap, the
 * time cap, or `stop()`.
 */
async function client(
  id: number,
  rng: Prng,
  base: string,
  keys: Map<string, KeyState>,
  stopped: () => boolean,
): Promise<ClientReport> {
  const own = Array.from({ length: KEYS_PER_CLIENT }, (_, j) => `c${id}/k${j}`);
  for (const k of own) keys.set(k, { acked: null });
  const report: ClientReport = { ops: 0, acked: 0, reads: 0, unknown: null };
  const until = Date.now() + MAX_CLIENT_MS;
  for (; report.ops < MAX_OPS && Date.now() < until && !stopped(); report.ops++) {
    const key = rng.pick(own);
    const st = keys.get(key)!;
    const r = rng.float();
    let op: string;
    let next: Uint8Array | null;
    let init: RequestInit;
    if (r < 0.15 && st.acked !== null) {
      // Read your own write, on the source, while it runs.
      const got = await call(objectUrl(base, key), {}, 10_000).catch(() => null);
      if (got === null) return { ...report, unknown: null };
      assert.equal(got.status, 200, `client ${id}: GET ${key}: ${got.status}`);
      assert.equal(
        firstDifference(got.bytes, st.acked),
        -1,
        `client ${id}: GET ${key} before the kill`,
      );
      report.reads++;
      continue;
    } else if (r < 0.25 && st.acked !== null) {
      op = "DELETE";
      next = null;
      init = { method: "DELETE" };
    } else if (r < 0.55) {
      const size = rng.chance(0.1) ? rng.range(MiB, 2 * MiB + 500_000) : rng.range(0, 64 * KiB);
      const body = rng.bytes(size);
      op = `PUT ${size} B`;
      next = body;
      init = { method: "PUT", body };
    } else {
      const size = st.acked?.length ?? 0;
      const offset = rng.int(size + 10_000);
      const data = rng.bytes(rng.range(1, 50 * KiB));
      op = `PUT @${offset}+${data.length}`;
      next = writeRange(st.acked, offset, data);
      init = {
        method: "PUT",
        body: data,
        headers: { "Content-Range": `bytes ${offset}-${offset + data.length - 1}/*` },
      };
    }
    let status: number | string;
    try {
      const a = await call(objectUrl(base, key), init, 15_000);
      status = a.status;
      if (status >= 200 && status < 300) {
        st.acked = next;
        report.acked++;
        continue;
      }
      if (status !== 503) {
        throw new Error(
          `client ${id}: ${op} on ${key}: unexpected ${status} ${a.text.slice(0, 300)}`,
        );
      }
    } catch (e) {
      if (e instanceof Error && e.message.startsWith(`client ${id}:`)) throw e;
      status = e instanceof Error ? e.message.slice(0, 80) : String(e);
    }
    // No clear answer: the write may or may not have happened. Stop here.
    st.maybe = { state: next, op: `${op} (${status})` };
    report.unknown = `${key}: ${op} -> ${status}`;
    return report;
  }
  return report;
}

Deno.test("mirror promote: acknowledged writes survive a source crash; the old source is refused", async () => {
  const seed = testSeed(0x9a0e_0001);
  await withSeed(
    seed,
    "mirror-promote",
    () =>
      withTempDir("refsync-mirror-promote-", async (tmp) => {
        const rng = new Prng(seed);
        const token = "promote-" + crypto.randomUUID();
        let dst: ApplianceProcess | null = null;
        let src: ApplianceProcess | null = null;
        let old: ApplianceProcess | null = null;
        try {
          dst = await spawnDest(`${tmp}/dest`, token, ["--cp-interval", "50"]);
          src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, [
            "--cp-interval",
            "50",
            "--cp-dirty-bytes",
            "4MiB",
            "--sync-timeout",
            "5000",
          ]);
          const srcDir = src.dataDir;

          // 1. Concurrent clients; SIGKILL the source at a seeded moment.
          const keys = new Map<string, KeyState>();
          let killed = false;
          const killAfterMs = rng.range(400, 1600);
          const clients = Array.from(
            { length: CLIENTS },
            (_, i) => client(i, rng.fork(), src!.url, keys, () => killed),
          );
          await sleep(killAfterMs);
          const before = await statsOf(src).catch(() => null);
          await src.kill();
          killed = true;
          src = null;
          const reports = await Promise.all(clients);
          const acked = reports.reduce((n, r) => n + r.acked, 0);
          assert.ok(acked > 0, `no write was acknowledged within ${killAfterMs} ms`);

          // 2. Promote the destination.
          const promoted = await callJson<{ cp: number; digest: string }>(
            `${dst.url}/v1/admin/promote`,
            { method: "POST", headers: adminAuth(dst) },
            60_000,
          );
          assert.equal(promoted.status, 200, `promote: ${promoted.status} ${promoted.text}`);
          assert.deepEqual(await digestOf(dst), promoted.json, "digest after promotion");

          // Every acknowledged write is there; an unanswered one is there whole or not at all.
          let inFlightApplied = 0;
          for (const [key, st] of keys) {
            const got = await call(objectUrl(dst.url, key));
            assert.ok(
              got.status === 200 || got.status === 404,
              `promoted: GET ${key}: ${got.status}`,
            );
            const state = got.status === 404 ? null : got.bytes;
            const same = (want: Uint8Array | null) =>
              want === null
                ? state === null
                : state !== null && firstDifference(state, want) === -1;
            if (same(st.acked)) continue;
            if (st.maybe && same(st.maybe.state)) {
              inFlightApplied++;
              continue;
            }
            assert.fail(
              `promoted: ${key} holds ${
                state === null ? "nothing" : `${state.length} B`
              }; acknowledged: ${st.acked === null ? "absent" : `${st.acked.length} B`}${
                st.maybe ? `; in flight: ${st.maybe.op}` : ""
              }`,
            );
          }
          // The list agrees with the reads for every key whose state is exact.
          const listed = new Set((await listAll(dst.url, 100)).map((o) => o.key));
          for (const [key, st] of keys) {
            if (st.maybe !== undefined) continue;
            assert.equal(listed.has(key), st.acked !== null, `promoted: list and ${key} disagree`);
          }
          console.log(
            `promote: seed=${seed} killAfter=${killAfterMs}ms acked=${acked} ` +
              `inFlightApplied=${inFlightApplied} source CPs before kill=${
                before?.cp.committed ?? "?"
              } ` +
              `clients=${JSON.stringify(reports)}`,
          );

          // 3. The promoted appliance is a source now: it takes writes.
          const fresh = rng.bytes(300_000);
          const put = await callJson<{ size: number; etag: string }>(
            objectUrl(dst.url, "after/promotion"),
            { method: "PUT", body: fresh },
          );
          assert.equal(put.status, 201, `PUT to the promoted appliance: ${put.status} ${put.text}`);
          assert.equal(put.json.etag, etagHex(fresh));
          const patch = rng.bytes(5000);
          const ranged = await call(objectUrl(dst.url, "after/promotion"), {
            method: "PUT",
            body: patch,
            headers: { "Content-Range": `bytes 299000-303999/*` },
          });
          assert.equal(
            ranged.status,
            200,
            `ranged PUT to the promoted appliance: ${ranged.status} ${ranged.text}`,
          );
          const expected = writeRange(fresh, 299_000, patch);
          const someKey = [...keys].find(([, st]) => st.acked !== null && st.maybe === undefined)
            ?.[0];
          if (someKey) {
            const d = await call(objectUrl(dst.url, someKey), { method: "DELETE" });
            assert.equal(d.status, 204, `DELETE on the promoted appliance: ${d.status} ${d.text}`);
          }
          const cp = await callJson<{ cp: number }>(
            `${dst.url}/v1/admin/cp`,
            { method: "POST", headers: adminAuth(dst) },
            60_000,
          );
          assert.equal(cp.status, 200, `CP on the promoted appliance: ${cp.status} ${cp.text}`);
          assert.ok(
            cp.json.cp > promoted.json.cp,
            `CP ${cp.json.cp} after promotion CP ${promoted.json.cp}`,
          );
          const back = await call(objectUrl(dst.url, "after/promotion"));
          assert.equal(
            firstDifference(back.bytes, expected),
            -1,
            "promoted: read back its own write",
          );

          // 4. The old source comes back pointed at the promoted appliance: fenced.
          const oldArgs = ["--cp-interval", "0", "--sync-timeout", "1000"];
          old = await spawnMirroredSource(srcDir, dst.url, token, oldArgs);
          const attempts: Array<{ what: string; init: RequestInit; key: string }> = [
            {
              what: "PUT",
              key: "split/brain",
              init: { method: "PUT", body: "written by the old source" },
            },
            {
              what: "ranged PUT",
              key: "split/brain-ranged",
              init: { method: "PUT", body: "xyz", headers: { "Content-Range": "bytes 10-12/*" } },
            },
            { what: "PUT again", key: "split/brain", init: { method: "PUT", body: "second try" } },
          ];
          if (someKey) attempts.push({ what: "DELETE", key: someKey, init: { method: "DELETE" } });
          for (const a of attempts) {
            const t0 = performance.now();
            const res: {
              status: number;
              headers: Headers;
              json: { message: string };
              text: string;
            } = await callJson<
              { error: string; message: string }
            >(
              objectUrl(old.url, a.key),
              a.init,
              10_000,
            );
            const ms = Math.round(performance.now() - t0);
            // A DELETE of a key the old source does not hold is a 404 (nothing written): fine too.
            if (a.what === "DELETE" && res.status === 404) continue;
            assert.equal(
              res.status,
              403,
              `old source: ${a.what} ${a.key}: ${res.status} ${res.text}`,
            );
            assert.equal(res.headers.get("Retry-After"), null, "a fencing is not to be retried");
            assert.equal((res.json as { error?: string }).error, "fenced");
            assert.match(
              res.json.message,
              /promoted/i,
              `old source: ${a.what}: the 403 should say the destination was promoted; got: ${res.json.message}`,
            );
            assert.ok(ms < 5000, `old source: ${a.what} took ${ms} ms (--sync-timeout is 1000 ms)`);
          }
          const oldCp = await call(`${old.url}/v1/admin/cp`, {
            method: "POST",
            headers: adminAuth(old),
          }, 30_000);
          assert.notEqual(oldCp.status, 200, `old source: CP succeeded: ${oldCp.text}`);
          const oldStats = await statsOf(old);
          assert.match(
            String((oldStats.mirror as { lastError?: string } | undefined)?.lastError ?? ""),
            /promot|split brain/i,
            `old source stats.mirror: ${JSON.stringify(oldStats.mirror)}`,
          );
          // Nothing the old source tried reached the promoted appliance.
          for (const key of ["split/brain", "split/brain-ranged"]) {
            const g = await call(objectUrl(dst.url, key));
            assert.equal(g.status, 404, `promoted: ${key} written by the refused old source`);
          }
          if (someKey) {
            const g = await call(objectUrl(dst.url, someKey));
            assert.equal(g.status, 404, `promoted: ${someKey} came back`);
          }
          // Nor is it readable or listed on the old source, before or after its restart.
          for (let round = 0; round < 2; round++) {
            const when = round === 0 ? "old source" : "old source after its restart";
            for (const key of ["split/brain", "split/brain-ranged"]) {
              const g = await call(objectUrl(old.url, key));
              assert.equal(g.status, 404, `${when}: refused ${key} answers ${g.status}`);
            }
            const listed = (await listAll(old.url, 100)).map((o) => o.key);
            assert.ok(!listed.some((k) => k.startsWith("split/")), `${when} lists ${listed}`);
            if (round === 1) break;
            await old.stop();
            old = await spawnMirroredSource(srcDir, dst.url, token, oldArgs);
            const again = await call(objectUrl(old.url, "split/brain"), {
              method: "PUT",
              body: "third try",
            }, 10_000);
            assert.equal(
              again.status,
              403,
              `${when}, restarted: PUT ${again.status} ${again.text}`,
            );
          }
        } finally {
          await stopAll(old, src, dst);
        }
      }),
  );
});

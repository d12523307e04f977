/**
 * Crash consistency of a real source process (invariant 3 of docs/internals.md): a source
 * under concurrent whole PUTs, ranged writes and DELETEs from a few clients is
 * killed with SIGKILL at seeded random moments, at least 20 times, and
 * restarted on the same data dir each time. CPs run often (`--cp-interval`
 * 50..300 ms, `--cp-dirty-bytes 1MiB`, so writers also wait on CPs), so kills
 * land inside CPs, group commits and multi-record transactions.
 *
 * The model (tests/support/model.ts) keeps, per key, what was ACKNOWLEDGED
 * (answered 2xx) and the one operation in flight (sent, not answered) when
 * the kill came. Each key is
 * owned by one client, which runs one operation at a time, so the order of
 * operations on a key is known. After each restart every key must hold
 * exactly the acknowledged content, or that content with the in-flight
 * operation applied WHOLE: never a part of a PUT or of a ranged write. Bytes
 * come from GET; every ETag is checked against an independent BLAKE3
 * (npm:blake3-wasm); the listing must match the model.
 *
 * Replay: `REFSYNC_SEED=<seed>`; `REFSYNC_CRASH_KILLS=<n>` changes the kill count.
 *
 * @module
 */
import { writeRange } from "../../sim/model.ts";
import { firstDifference } from "../support/bytes.ts";
import { Model } from "../support/model.ts";
import assert from "node:assert/strict";
import {
  adminAuth,
  type ApplianceProcess,
  spawnSource,
  withTempDir,
} from "../support/appliance.ts";
import { etagHex, etagValue } from "../support/blake3.ts";
import { objectUrl, request, requestJson } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import { sleep, withDeadline } from "../support/timeout.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const KILLS = Number(Deno.env.get("REFSYNC_CRASH_KILLS") ?? 24);
const CLIENTS = 4;
const KEYS_PER_CLIENT = 4;
/** Operations per client per round, at most (the kill usually comes first). */
const MAX_OPS_PER_ROUND = 400;
/** Load time before the kill, ms (seeded in this range). */
const KILL_AFTER_MS: [number, number] = [100, 1200];
/** The whole test gives up (and fails) past this. */
const TOTAL_BUDGET_MS = 240_000;
/** One request may take this long before it counts as hung. */
const REQUEST_TIMEOUT_MS = 30_000;

/** An operation on one key. */
type Op =
  | { kind: "put"; data: Uint8Array }
  | { kind: "range"; offset: number; data: Uint8Array }
  | { kind: "delete" };

/** The object after `op` is applied to `before` (null: absent). */
function apply(before: Uint8Array | null, op: Op): Uint8Array | null {
  switch (op.kind) {
    case "put":
      return op.data;
    case "delete":
      return null;
    case "range":
      return writeRange(before, op.offset, op.data);
  }
}

function describe(op: Op): string {
  switch (op.kind) {
    case "put":
      return `PUT of ${op.data.length} bytes`;
    case "delete":
      return "DELETE";
    case "range":
      return `ranged write of ${op.data.length} bytes at ${op.offset}`;
  }
}

/** Sizes of whole PUTs: empty, small, 4 KiB-aligned and not, across the 1 MiB record size. */
function putSize(rng: Prng): number {
  switch (rng.int(8)) {
    case 0:
      return rng.chance(0.5) ? 0 : rng.range(1, 100);
    case 1:
      return rng.range(1, 16 * KiB);
    case 2:
      return rng.range(1, 768) * 4 * KiB; // aligned, up to 3 MiB
    case 3:
      return rng.pick([MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB]);
    default:
      return rng.range(0, 3 * MiB); // unaligned, up to 3 MiB
  }
}

/** A ranged write: unaligned offset inside or past the end (a hole), length up to 1.5 MiB. */
function rangeOp(rng: Prng, size: number): Op {
  const offset = rng.chance(0.2) ? size + rng.range(0, 64 * KiB) : rng.range(0, size);
  const length = rng.chance(0.7) ? rng.range(1, 64 * KiB) : rng.range(1, 1.5 * MiB);
  return { kind: "range", offset, data: rng.bytes(length) };
}

function nextOp(rng: Prng, acked: Uint8Array | null): Op | "check" {
  const size = acked?.length ?? -1;
  const r = rng.float();
  if (size < 0) return r < 0.7 ? { kind: "put", data: rng.bytes(putSize(rng)) } : rangeOp(rng, 0);
  if (r < 0.35) return { kind: "put", data: rng.bytes(putSize(rng)) };
  if (r < 0.75) return rangeOp(rng, size);
  if (r < 0.85) return { kind: "delete" };
  return "check";
}

/** Counters printed at the end. */
interface Tally {
  acked: number;
  inflightApplied: number;
  inflightDropped: number;
  checks: number;
  maxCp: number;
  bytesAcked: number;
}

Deno.test({
  name: "crash: SIGKILL under concurrent PUT / ranged write / DELETE loses no acknowledged write",
  // The process and its fetches are ours to end; nothing else runs in this file.
  fn: async () => {
    const seed = testSeed(0xc4a5e);
    await withSeed(seed, "crash", () =>
      withTempDir("refsync-crash-", async (dir) => {
        const rng = new Prng(seed);
        const started = performance.now();
        const keys: string[][] = [];
        for (let c = 0; c < CLIENTS; c++) {
          keys.push([]);
          for (let k = 0; k < KEYS_PER_CLIENT; k++) {
            keys[c].push(`c${c}/${k === 0 ? "k0" : `sub/k${k}`}`);
          }
        }
        const all = keys.flat();
        const model = new Model();
        const tally: Tally = {
          acked: 0,
          inflightApplied: 0,
          inflightDropped: 0,
          checks: 0,
          maxCp: 0,
          bytesAcked: 0,
        };
        let kills = 0;

        for (let round = 0; round <= KILLS; round++) {
          if (performance.now() - started > TOTAL_BUDGET_MS) break;
          const cpInterval = rng.range(50, 300);
          const args = ["--cp-interval", String(cpInterval), "--cp-dirty-bytes", "1MiB"];
          const src = await spawnSource(dir, args);
          try {
            // ---- after a restart: every key is what was acknowledged, with the
            // in-flight operation (if any) applied whole or not at all.
            await verifyAll(src, model, all, tally, `round ${round} (after kill ${kills})`);
            if (round === KILLS) break; // the last restart is only verified

            // ---- load, then SIGKILL at a seeded moment
            const killAfter = rng.range(KILL_AFTER_MS[0], KILL_AFTER_MS[1]);
            const state = { killing: false };
            const clients = keys.map((owned, c) =>
              runClient(
                src,
                model,
                owned,
                new Prng(seed ^ (round * 7919 + c * 104729)),
                state,
                tally,
                `round ${round} client ${c}`,
              )
            );
            // A client that fails for a reason other than the kill ends the round at once.
            const stopSleep = new AbortController();
            clients.forEach((p) => p.catch(() => stopSleep.abort()));
            await sleep(killAfter, stopSleep.signal);
            // Every other round, ask for a CP and kill a few ms later: the kill
            // lands inside the CP's block writes or its superblock commit.
            let cpCall: Promise<unknown> = Promise.resolve();
            if (round % 2 === 1 && !stopSleep.signal.aborted) {
              cpCall = request(`${src.url}/v1/admin/cp`, {
                method: "POST",
                headers: adminAuth(src),
              }).catch(() => {});
              await sleep(rng.range(0, 25));
            }
            state.killing = true;
            await src.kill();
            kills++;
            await cpCall;
            for (const r of await Promise.allSettled(clients)) {
              if (r.status === "rejected") throw r.reason;
            }
          } finally {
            await src.kill();
          }
        }

        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        console.log(
          `crash: seed ${seed}: ${kills} kills in ${seconds} s; ${tally.acked} writes acknowledged ` +
            `(${
              (tally.bytesAcked / MiB).toFixed(0)
            } MiB), ${tally.checks} reads checked during load; ` +
            `in flight at a kill: ${tally.inflightApplied} applied whole, ${tally.inflightDropped} not applied; ` +
            `highest CP seen ${tally.maxCp}`,
        );
        assert.ok(
          kills >= Math.min(20, KILLS),
          `only ${kills} kills fitted in ${TOTAL_BUDGET_MS} ms`,
        );
        assert.ok(tally.maxCp > 0, "no CP was ever committed: the kills never met a CP");
      }));
  },
});

/** One client: operations on its own keys, one at a time, until the kill (or its bounds). */
async function runClient(
  src: ApplianceProcess,
  model: Model,
  owned: string[],
  rng: Prng,
  state: { killing: boolean },
  tally: Tally,
  who: string,
): Promise<void> {
  for (let i = 0; i < MAX_OPS_PER_ROUND && !state.killing; i++) {
    const key = rng.pick(owned);
    const before = model.bytes(key);
    const op = nextOp(rng, before);
    const url = objectUrl(src.url, key);
    if (op === "check") {
      // A read during load sees exactly the acknowledged state (no write of this key is in flight).
      let a;
      try {
        a = await withDeadline(REQUEST_TIMEOUT_MS, (signal) => request(url, { signal }));
      } catch (e) {
        if (state.killing) return;
        throw new Error(`${who}: GET ${key} failed: ${e}`);
      }
      assertContent(
        key,
        before,
        a.status,
        a.bytes,
        a.headers.get("ETag"),
        `${who}: GET during load`,
      );
      tally.checks++;
      continue;
    }
    const init: RequestInit = op.kind === "delete"
      ? { method: "DELETE" }
      : op.kind === "put"
      ? { method: "PUT", body: op.data as BodyInit }
      : {
        method: "PUT",
        body: op.data as BodyInit,
        headers: { "Content-Range": `bytes ${op.offset}-${op.offset + op.data.length - 1}/*` },
      };
    const after = apply(before, op);
    model.send(key, after, describe(op));
    let res: Response;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    try {
      timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
      res = await fetch(url, { ...init, signal: controller.signal });
    } catch (e) {
      clearTimeout(timer);
      // Sent (maybe partly), never answered: may or may not be applied.
      if (state.killing) return;
      throw new Error(`${who}: ${describe(op)} to ${key} failed before the kill: ${e}`);
    }
    // A 2xx status line means acknowledged, even if the body is cut by the kill.
    const status = res.status;
    const etag = res.headers.get("ETag");
    let body: Record<string, unknown> | null = null;
    try {
      const text = await res.text();
      body = op.kind === "delete" && text === "" ? {} : JSON.parse(text);
    } catch {
      if (!state.killing) {
        throw new Error(`${who}: ${describe(op)} to ${key}: ${status} without a JSON body`);
      }
    } finally {
      clearTimeout(timer);
    }
    if (op.kind === "delete") {
      assert.equal(status, 204, `${who}: DELETE ${key}: ${status} ${JSON.stringify(body)}`);
    } else {
      assert.equal(
        status,
        before === null ? 201 : 200,
        `${who}: ${describe(op)} to ${key} (${
          before === null ? "absent" : `${before.length} bytes`
        }): ` +
          `${status} ${JSON.stringify(body)}`,
      );
      if (body) {
        assert.equal(
          body.size,
          after!.length,
          `${who}: size answered for ${describe(op)} to ${key}`,
        );
        if (op.kind === "put") {
          const want = etagHex(op.data);
          assert.equal(body.etag, want, `${who}: etag answered for ${describe(op)} to ${key}`);
          assert.equal(
            etagValue(etag),
            want,
            `${who}: ETag header for ${describe(op)} to ${key}`,
          );
        } else {
          assert.equal(body.etag, null, `${who}: a ranged write answers etag null`);
        }
      }
      tally.bytesAcked += op.data.length;
    }
    model.ack(key);
    tally.acked++;
  }
}

/** Checks every key after a restart, settling in-flight operations; checks the listing too. */
async function verifyAll(
  src: ApplianceProcess,
  model: Model,
  all: string[],
  tally: Tally,
  when: string,
): Promise<void> {
  for (const key of all) {
    const a = await withDeadline(
      REQUEST_TIMEOUT_MS,
      (signal) => request(objectUrl(src.url, key), { signal }),
    );
    const got = a.status === 404 ? null : a.bytes;
    if (a.status !== 404 && a.status !== 200) {
      throw new Error(`${when}: GET ${key}: ${a.status} ${a.text.slice(0, 300)}`);
    }
    const sent = model.inflight(key);
    if (sent) {
      const acked = model.bytes(key);
      const outcome = model.settle(key, got);
      if (outcome === "applied") tally.inflightApplied++;
      else if (outcome === "not") tally.inflightDropped++;
      else {
        throw new Error(
          `${when}: ${key} holds ${shape(got)}; acknowledged was ${shape(acked)}, and the ` +
            `${sent.what} in flight at the kill would make ${shape(sent.next)}: it is neither ` +
            `(${explain(got, acked, sent.next)})`,
        );
      }
    }
    assertContent(key, model.bytes(key), a.status, a.bytes, a.headers.get("ETag"), when);
  }
  // The listing agrees with the model (keys in UTF-8 order, sizes, ETags).
  const list = await requestJson<
    { objects: Array<{ key: string; size: number; etag: string }>; next: string | null }
  >(
    `${src.url}/v1/objects?limit=1000`,
  );
  assert.equal(list.status, 200, `${when}: list`);
  assert.deepEqual(list.json.objects.map((o) => o.key), model.sortedKeys(), `${when}: listed keys`);
  for (const o of list.json.objects) {
    const acked = model.bytes(o.key)!;
    assert.equal(o.size, acked.length, `${when}: listed size of ${o.key}`);
    assert.equal(o.etag, etagHex(acked), `${when}: listed etag of ${o.key}`);
  }
  const stats = await requestJson<{ cp: { committed: number } }>(`${src.url}/v1/admin/stats`);
  tally.maxCp = Math.max(tally.maxCp, stats.json.cp.committed);
}

function assertContent(
  key: string,
  want: Uint8Array | null,
  status: number,
  bytes: Uint8Array,
  etag: string | null,
  when: string,
): void {
  if (want === null) {
    assert.equal(
      status,
      404,
      `${when}: ${key} should be absent, GET gave ${status} (${bytes.length} bytes)`,
    );
    return;
  }
  assert.equal(
    status,
    200,
    `${when}: ${key} should hold ${want.length} bytes, GET gave ${status}`,
  );
  const diff = firstDifference(bytes, want);
  assert.equal(
    diff,
    -1,
    `${when}: ${key} holds ${shape(bytes)}, acknowledged ${
      shape(want)
    }; first difference at byte ${diff}`,
  );
  assert.equal(etagValue(etag), etagHex(want), `${when}: ETag of ${key}`);
}

function shape(b: Uint8Array | null): string {
  return b === null ? "nothing (absent)" : `${b.length} bytes`;
}

/** Where the content departs from each candidate, to tell a half-applied write from other damage. */
function explain(
  got: Uint8Array | null,
  acked: Uint8Array | null,
  applied: Uint8Array | null,
): string {
  if (got === null) return "the object is gone";
  const parts: string[] = [];
  if (acked) {
    parts.push(`differs from the acknowledged content at byte ${firstDifference(got, acked)}`);
  }
  if (applied) parts.push(`from the applied one at byte ${firstDifference(got, applied)}`);
  return parts.join(", ");
}

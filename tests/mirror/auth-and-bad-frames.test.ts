/**
 * The destination's door (real processes):
 *
 * - client PUT (whole and ranged) and DELETE are refused with 403 JSON, even
 *   with the pair token; nothing is written;
 * - every replication call without the token, with a wrong one, or with a
 *   malformed Authorization header is refused with 401 JSON; nothing is appended;
 * - malformed log frames posted WITH the token to a spare destination (bad
 *   payload digest, bad header checksum, bad magic, oversized length, LSN gap,
 *   LSN repeat, truncated stream) are refused with a clear 4xx JSON error and
 *   append nothing (`/v1/repl/state` lastLsn); malformed CP sync streams
 *   (unknown record kind, truncated, record before BEGIN, wrong CP, a DATA
 *   record aimed at a superblock slot, oversized counts, no COMMIT, a COMMIT
 *   whose digest does not match) are refused and commit nothing; the process
 *   keeps serving and accepts the next valid frame;
 * - on a live pair, a rogue client's bad replication requests (and a CP sync
 *   stream it holds open while the source takes a CP) do not break the pair:
 *   the source's writes are still acknowledged, and after the next CP both
 *   digests are equal — without any operator action.
 *
 * @module
 */
import { concatBytes } from "../../src/bytes/mod.ts";
import type { DestState } from "../../src/protocol/handshake/mod.ts";
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { adminAuth, withTempDir } from "../support/appliance.ts";
import { type Answer, assertJsonError, objectUrl } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import { sleep, withDeadline } from "../support/timeout.ts";
import { putFields } from "../storage/log/helpers.ts";
import { encodeFrame, Off } from "../../src/protocol/log-frame/mod.ts";
import { type CpRecord, encodeRecord, Kind } from "../../src/protocol/cp-sync/records.ts";
import { encodeSuperblock } from "../../src/storage/volume/superblock.ts";
import {
  adminCp,
  assertSameDigest,
  bearer,
  call,
  callJson,
  eventually,
  spawnDest,
  spawnPair,
  stopAll,
  verifySides,
} from "./pair.ts";
import { Model } from "../support/model.ts";

type ReplState = DestState;

async function replState(base: string, token: string): Promise<ReplState> {
  const a = await callJson<ReplState>(`${base}/v1/repl/state`, { headers: bearer(token) });
  assert.equal(a.status, 200, `GET /v1/repl/state: ${a.status} ${a.text}`);
  return a.json;
}

/** A self-committing whole-object WRITE frame. */
function writeFrame(lsn: number, key: string, payload: Uint8Array): Uint8Array {
  return encodeFrame(putFields(lsn, key, Date.now()), payload).bytes;
}

function postLog(base: string, token: string, body: Uint8Array): Promise<Answer> {
  return call(`${base}/v1/repl/log`, {
    method: "POST",
    body: body as BodyInit,
    headers: { ...bearer(token), "Content-Type": "application/octet-stream" },
  });
}

function postCp(
  base: string,
  token: string,
  records: Array<CpRecord | Uint8Array>,
): Promise<Answer> {
  const body = concatBytes(records.map((r) => r instanceof Uint8Array ? r : encodeRecord(r)));
  return call(`${base}/v1/repl/cp`, {
    method: "POST",
    body: body as BodyInit,
    headers: { ...bearer(token), "Content-Type": "application/octet-stream" },
  });
}

/** BEGIN of the CP after the destination's committed one (what its source would send). */
function beginFor(state: ReplState): CpRecord {
  return {
    kind: "begin",
    cp: state.cp + 1,
    pairGeneration: state.pairGeneration,
    volumeId: Uint8Array.fromHex(state.volumeId),
    previousDigest: Uint8Array.fromHex(state.volumeDigest),
  };
}

/** Every malformed log body, built for a destination whose last LSN is `last`. */
function badLogBodies(
  last: number,
  rng: Prng,
): Array<{ name: string; body: Uint8Array; message: RegExp }> {
  const next = last + 1;
  const payload = rng.bytes(10_000);
  const good = writeFrame(next, "rogue/a", payload);
  const badPayload = good.slice();
  badPayload[badPayload.length - 1] ^= 0x01;
  const badHeader = good.slice();
  badHeader[Off.mtime] ^= 0x40;
  const badMagic = good.slice();
  badMagic[0] ^= 0xff;
  const huge = good.slice();
  new DataView(huge.buffer).setUint32(Off.frameLength, 0x7fff_ffff, true);
  const out = [
    { name: "bad payload digest", body: badPayload, message: /digest|checksum/i },
    { name: "bad header checksum", body: badHeader, message: /checksum/i },
    { name: "bad magic", body: badMagic, message: /magic/i },
    { name: "oversized frame length", body: huge, message: /length|exceeds/i },
    { name: "LSN gap", body: writeFrame(next + 3, "rogue/a", payload), message: /gap/i },
    { name: "truncated frame", body: good.subarray(0, good.length - 1), message: /ended|truncat/i },
    { name: "truncated prefix", body: good.subarray(0, 10), message: /ended|truncat/i },
    { name: "garbage", body: rng.bytes(3000), message: /frame/i },
    {
      name: "LSN gap after a valid frame (one body)",
      body: concatBytes([good, writeFrame(next + 2, "rogue/b", payload)]),
      message: /gap/i,
    },
  ];
  if (last >= 1) {
    out.push({
      name: "LSN repeat",
      body: writeFrame(last, "rogue/a", payload),
      message: /repeat/i,
    });
  }
  return out;
}

Deno.test("mirror auth: the destination refuses client writes (403), tokenless replication (401) and bad frames", async () => {
  const seed = testSeed(0xa07b_0001);
  await withSeed(seed, "mirror-auth", () =>
    withTempDir("refsync-mirror-auth-", async (tmp) => {
      const rng = new Prng(seed);
      const token = "spare-" + crypto.randomUUID();
      let dst: ApplianceProcess | null = null;
      try {
        dst = await spawnDest(`${tmp}/dest`, token);
        const base = dst.url;

        // Client writes: 403, with or without the pair token.
        for (const headers of [{}, bearer(token)]) {
          const cases: Array<[string, RequestInit]> = [
            ["PUT", { method: "PUT", body: "x", headers }],
            ["ranged PUT", {
              method: "PUT",
              body: "xyz",
              headers: { ...headers, "Content-Range": "bytes 5-7/*" },
            }],
            ["DELETE", { method: "DELETE", headers }],
          ];
          for (const [what, init] of cases) {
            const a = await call(objectUrl(base, "client/write"), init);
            const e = assertJsonError(a, 403, `destination: client ${what}`);
            assert.equal(e.error, "forbidden");
          }
        }
        assert.equal(
          (await call(objectUrl(base, "client/write"))).status,
          404,
          "a refused PUT wrote something",
        );

        // Replication without the right token: 401 on every endpoint, nothing appended.
        const frame1 = writeFrame(1, "rogue/unauthorized", rng.bytes(100));
        const endpoints: Array<[string, RequestInit]> = [
          ["GET /v1/repl/state", {}],
          ["POST /v1/repl/log", { method: "POST", body: frame1 as BodyInit }],
          ["POST /v1/repl/log/reset", { method: "POST", body: JSON.stringify({ lastLsn: 0 }) }],
          ["POST /v1/repl/cp", {
            method: "POST",
            body: encodeRecord(beginFor(await replState(base, token))) as BodyInit,
          }],
        ];
        const badAuth: Array<[string, Record<string, string>]> = [
          ["no token", {}],
          ["wrong token", bearer("wrong-" + token)],
          ["token prefix", bearer(token.slice(0, -1))],
          ["token + 1 char", bearer(token + "x")],
          ["empty bearer", { Authorization: "Bearer " }],
          ["basic scheme", { Authorization: `Basic ${token}` }],
          ["lower-case scheme, no space", { Authorization: `bearer${token}` }],
        ];
        for (const [ep, init] of endpoints) {
          for (const [what, headers] of badAuth) {
            const a = await call(`${base}${ep.split(" ")[1]}`, { ...init, headers });
            const e = assertJsonError(a, 401, `${ep} with ${what}`);
            assert.equal(e.error, "unauthorized", `${ep} with ${what}`);
          }
        }
        let state = await replState(base, token);
        assert.equal(state.lastLsn, 0, "unauthorized frames were appended");
        assert.equal(state.cp, 0, "an unauthorized CP sync committed");

        // Malformed frames with the right token: 4xx JSON, nothing appended.
        const first = await callJson<{ lastLsn: number }>(`${base}/v1/repl/log`, {
          method: "POST",
          body: frame1 as BodyInit,
          headers: bearer(token),
        });
        assert.equal(first.status, 200, `a valid frame: ${first.status} ${first.text}`);
        assert.equal(first.json.lastLsn, 1);
        for (let round = 0; round < 2; round++) {
          state = await replState(base, token);
          for (const bad of badLogBodies(state.lastLsn, rng)) {
            const a = await postLog(base, token, bad.body);
            const e = assertJsonError(a, [400, 409, 413, 422], `log frames: ${bad.name}`);
            assert.match(e.message, bad.message, `log frames: ${bad.name}: message`);
            const after = await replState(base, token);
            assert.equal(
              after.lastLsn,
              state.lastLsn,
              `log frames: ${bad.name}: refused, yet the log grew from ${state.lastLsn} to ${after.lastLsn}`,
            );
          }
          // The receiver is not wedged: the next valid frame is taken.
          const ok = await callJson<{ lastLsn: number }>(`${base}/v1/repl/log`, {
            method: "POST",
            body: writeFrame(state.lastLsn + 1, `rogue/ok-${round}`, rng.bytes(5000)) as BodyInit,
            headers: bearer(token),
          });
          assert.equal(ok.status, 200, `valid frame after bad ones: ${ok.status} ${ok.text}`);
          assert.equal(ok.json.lastLsn, state.lastLsn + 1);
        }

        // A valid frame then a corrupt one in ONE body: refused; the valid prefix may be kept
        // (it is durable: the forwarder resumes after it), and the answer says how far.
        state = await replState(base, token);
        const corrupt = writeFrame(state.lastLsn + 2, "rogue/prefix-2", rng.bytes(3000));
        corrupt[corrupt.length - 1] ^= 0x01;
        const mixed = await postLog(
          base,
          token,
          concatBytes([writeFrame(state.lastLsn + 1, "rogue/prefix-1", rng.bytes(3000)), corrupt]),
        );
        const mixedError = assertJsonError(
          mixed,
          [400, 409, 422],
          "log frames: valid then corrupt",
        );
        const afterMixed = await replState(base, token);
        assert.ok(
          afterMixed.lastLsn === state.lastLsn || afterMixed.lastLsn === state.lastLsn + 1,
          `log frames: valid then corrupt: lastLsn ${state.lastLsn} -> ${afterMixed.lastLsn}`,
        );
        assert.match(
          mixedError.message,
          new RegExp(`up to ${afterMixed.lastLsn}\\b`),
          "log frames: valid then corrupt: the answer says how far the log goes",
        );

        // Log reset with bad bodies: 4xx, nothing changes.
        state = await replState(base, token);
        for (
          const [what, body] of [
            ["not JSON", "{"],
            ["no field", "{}"],
            ["lastLsn past the CP", JSON.stringify({ lastLsn: state.lastLsn + 10 })],
            ["truncateAfter below the CP", JSON.stringify({ truncateAfter: -1 })],
          ]
        ) {
          const a = await call(`${base}/v1/repl/log/reset`, {
            method: "POST",
            body,
            headers: { ...bearer(token), "Content-Type": "application/json" },
          });
          assertJsonError(a, [400, 409], `log reset: ${what}`);
          assert.deepEqual(
            await replState(base, token),
            state,
            `log reset: ${what} changed the state`,
          );
        }

        // Malformed CP sync streams: refused, nothing committed.
        const begin = beginFor(state);
        const data = (block: number): CpRecord => ({ kind: "data", block, bytes: rng.bytes(4096) });
        const logRefCount0 = encodeRecord({
          kind: "logRef",
          block: 100,
          count: 1,
          lsn: 1,
          payloadOffset: 0,
          check: new Uint8Array(16),
        });
        new DataView(logRefCount0.buffer).setUint32(5, 0, true);
        const hugeFree = new Uint8Array(5);
        hugeFree[0] = Kind.FREE;
        new DataView(hugeFree.buffer).setUint32(1, 5000, true);
        const wrongCommit: CpRecord = {
          kind: "commit",
          superblock: encodeSuperblock({
            volumeId: Uint8Array.fromHex(state.volumeId),
            pairGeneration: state.pairGeneration,
            cp: state.cp + 1,
            lsnCovered: 0,
            catalogRoot: null,
            blockCount: 101,
            volumeDigest: rng.bytes(32),
            promotedAtLsn: 0,
            promotedFromCp: 0,
            promotedFromDigest: new Uint8Array(32),
          }),
        };
        const cpCases: Array<[string, Array<CpRecord | Uint8Array>, number[]]> = [
          ["empty stream", [], [400]],
          ["unknown record kind", [Uint8Array.of(0x63, 1, 2, 3)], [400]],
          ["truncated BEGIN", [encodeRecord(begin).subarray(0, 20)], [400]],
          ["a record before BEGIN", [{ kind: "free", blocks: [7] }], [400]],
          ["BEGIN of a CP far ahead", [{ ...begin, cp: state.cp + 5 } as CpRecord], [409]],
          [
            "BEGIN with another history",
            [{ ...begin, previousDigest: rng.bytes(32) } as CpRecord],
            [409],
          ],
          ["BEGIN twice", [begin, begin], [400]],
          ["DATA into superblock slot 0", [begin, data(0)], [400, 409]],
          ["DATA into superblock slot 1", [begin, data(1)], [400, 409]],
          ["the same block twice", [begin, data(100), data(100)], [400, 409]],
          ["LOG_REF count 0", [begin, logRefCount0], [400]],
          ["FREE of 5000 blocks", [begin, hugeFree], [400]],
          ["no COMMIT", [begin, data(100), data(101)], [400]],
          ["truncated DATA", [begin, encodeRecord(data(100)).subarray(0, 999)], [400]],
          ["COMMIT with a garbage superblock", [
            begin,
            data(100),
            Uint8Array.of(Kind.COMMIT, ...rng.bytes(4096)),
          ], [400]],
          ["COMMIT whose digest does not match", [begin, data(100), wrongCommit], [409]],
        ];
        for (const [what, records, statuses] of cpCases) {
          const a = await postCp(base, token, records);
          assertJsonError(a, statuses, `CP sync: ${what}`);
          const after = await replState(base, token);
          assert.equal(after.cp, state.cp, `CP sync: ${what}: committed CP ${after.cp}`);
          assert.equal(after.volumeDigest, state.volumeDigest, `CP sync: ${what}: digest changed`);
        }
        assert.equal(dst.exited, null, "the destination process died");
        const stats = await call(`${base}/v1/admin/stats`);
        assert.equal(stats.status, 200, "the destination still answers");
      } finally {
        await stopAll(dst);
      }
    }));
});

Deno.test("mirror auth: a rogue client's bad replication requests do not break a live pair", async () => {
  const seed = testSeed(0xa07b_0002);
  await withSeed(seed, "mirror-rogue", () =>
    withTempDir("refsync-mirror-rogue-", async (tmp) => {
      const rng = new Prng(seed);
      const pair = await spawnPair(tmp, {
        sourceArgs: ["--cp-interval", "0", "--sync-timeout", "3000"],
      });
      const { src, dst, token } = pair;
      const model = new Model();
      const put = async (key: string, bytes: Uint8Array) => {
        const a = await call(objectUrl(src.url, key), { method: "PUT", body: bytes as BodyInit });
        assert.equal(
          a.status,
          model.objects.has(key) ? 200 : 201,
          `PUT ${key} to the source: ${a.text}`,
        );
        model.put(key, bytes);
      };
      try {
        for (let i = 0; i < 4; i++) await put(`before/${i}`, rng.bytes(rng.range(1, 300_000)));
        await adminCp(src);
        await assertSameDigest(src, dst, "before the rogue");

        // The rogue: every malformed log body, and malformed CP streams, with the pair token.
        for (let round = 0; round < 2; round++) {
          const state = await replState(dst.url, token);
          for (const bad of badLogBodies(state.lastLsn, rng)) {
            if (bad.name.includes("after a valid frame")) continue; // valid frames are not rogue
            const a = await postLog(dst.url, token, bad.body);
            assertJsonError(a, [400, 409, 413, 422], `rogue log: ${bad.name}`);
          }
          const begin = beginFor(state);
          for (
            const records of [[begin], [
              begin,
              { kind: "data", block: 0, bytes: rng.bytes(4096) } as CpRecord,
            ]]
          ) {
            assertJsonError(await postCp(dst.url, token, records), [400, 409], "rogue CP stream");
          }
          // The source keeps writing meanwhile: acknowledged as usual.
          for (let i = 0; i < 3; i++) {
            await put(`during/${round}/${i}`, rng.bytes(rng.range(1, 200_000)));
          }
        }
        await adminCp(src);
        await assertSameDigest(src, dst, "after the rogue's bad requests");
        await verifySides(
          model,
          { source: src, destination: dst },
          "after the rogue's bad requests",
        );

        // The rogue holds a CP sync stream open (a valid BEGIN, then nothing) while the
        // source takes a CP: that CP may fail, the writes must not, and the next CP works.
        const state = await replState(dst.url, token);
        let release!: () => void;
        const released = new Promise<void>((resolve) => (release = resolve));
        const stalled = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(encodeRecord(beginFor(state)));
            await released;
            controller.enqueue(Uint8Array.of(0x63)); // an unknown kind ends it
            controller.close();
          },
        });
        const rogue = withDeadline(30_000, async (signal) => {
          const res = await fetch(`${dst.url}/v1/repl/cp`, {
            method: "POST",
            body: stalled,
            headers: bearer(token),
            signal,
            // @ts-ignore: Deno streams request bodies with duplex "half"
            duplex: "half",
          });
          return { status: res.status, text: await res.text() };
        });
        try {
          // Wait until the destination is busy with the rogue's stream.
          await eventually("the rogue's CP stream is being applied", async () => {
            const probe = await postCp(dst.url, token, [beginFor(state)]);
            return probe.status === 409 && /already/.test(probe.text) ? true : undefined;
          }, { attempts: 100, ms: 10_000, pauseMs: 50 });
          for (let i = 0; i < 3; i++) {
            await put(`stalled/${i}`, rng.bytes(rng.range(1, 100_000)));
          }
          const blocked = await call(`${src.url}/v1/admin/cp`, {
            method: "POST",
            headers: adminAuth(src),
          }, 30_000);
          assert.ok(
            blocked.status === 503 || blocked.status === 200,
            `CP while a rogue stream is open: ${blocked.status} ${blocked.text}`,
          );
        } finally {
          release();
        }
        const rogueAnswer = await rogue;
        assert.ok(
          rogueAnswer.status >= 400 && rogueAnswer.status < 500,
          `rogue stream: ${rogueAnswer.status}`,
        );
        await sleep(50);
        for (let i = 0; i < 3; i++) await put(`recovered/${i}`, rng.bytes(rng.range(1, 100_000)));
        await adminCp(src);
        await assertSameDigest(src, dst, "after the rogue's stalled stream");
        await verifySides(
          model,
          { source: src, destination: dst },
          "after the rogue's stalled stream",
        );
      } finally {
        await pair.stop();
      }
    }));
});

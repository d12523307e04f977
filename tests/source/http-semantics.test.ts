/**
 * The object API's HTTP semantics against a real source process (issue 8,
 * items 8 and 9):
 *
 * - keys come from the raw request path, percent-decoded once: dot segments
 *   are literal (`PUT /v1/objects/a/../b` stores `a/../b` and never creates
 *   `b`), sent over raw TCP because fetch and curl resolve them client-side;
 *   a list parameter that is not UTF-8 is a 400;
 * - conditional requests (RFC 9110 §13) give 304/412, and a refused write or
 *   delete changes nothing; of two racing create-only PUTs exactly one wins;
 * - Range: unit in any case, last byte clamped, a Range that is not one byte
 *   range served 200 in full; `Content-Range: bytes a-b/N` with N not the
 *   size after the write is refused;
 * - a body that stalls past `--body-idle-timeout` gets 408 and nothing of it
 *   is applied, also after a crash and replay.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, spawnSource, withTempDir } from "../support/appliance.ts";
import { blake3Hex, etagHex, etagValue } from "../support/blake3.ts";
import {
  assertJsonError,
  getObject,
  objectUrl,
  putObject,
  type RawAnswer,
  rawExchange,
  request,
  requestJson,
  streamingPut,
} from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";
import { sleep } from "../support/timeout.ts";

const MiB = 1 << 20;
const IDLE_MS = 500;

/** A raw HTTP/1.1 request with `Connection: close`. */
function raw(method: string, target: string, body = "", headers = ""): string {
  const length = method === "PUT"
    ? `Content-Length: ${new TextEncoder().encode(body).length}\r\n`
    : "";
  return `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${length}${headers}\r\n${body}`;
}

/** The JSON body of a raw answer. */
function rawJson(a: RawAnswer): Record<string, unknown> {
  const body = a.text.slice(a.text.indexOf("\r\n\r\n") + 4);
  try {
    return JSON.parse(body);
  } catch {
    throw new Error(`not JSON: ${a.text.slice(0, 300)}`);
  }
}

async function listKeys(base: string, query = ""): Promise<string[]> {
  const a = await requestJson<{ objects: Array<{ key: string }> }>(
    `${base}/v1/objects?limit=10000${query}`,
  );
  assert.equal(a.status, 200, JSON.stringify(a.json));
  return a.json.objects.map((o) => o.key);
}

async function spawn(dir: string): Promise<ApplianceProcess> {
  return await spawnSource(dir, ["--cp-interval", "0", "--body-idle-timeout", String(IDLE_MS)]);
}

Deno.test("keys: the raw path, decoded once; dot segments are literal, never resolved", async () => {
  await withTempDir("refsync-rawkeys-", async (dir) => {
    const src = await spawn(dir);
    try {
      const cases: Array<[string, string]> = [
        ["/v1/objects/a/../b", "a/../b"],
        ["/v1/objects/./q", "./q"],
        ["/v1/objects/%2E%2E/y", "../y"],
        ["/v1/objects/x/%2e%2e/%2e/z", "x/.././z"],
        ["/v1/objects/../../../w", "../../../w"],
      ];
      for (const [target, key] of cases) {
        const put = await rawExchange(src.port, raw("PUT", target, `body of ${key}`));
        assert.equal(put.status, 201, `PUT ${target}: ${put.text.slice(0, 300)}`);
        assert.equal(rawJson(put).key, key, `PUT ${target} stores the key as sent`);
        const got = await rawExchange(src.port, raw("GET", target));
        assert.equal(got.status, 200, `GET ${target}`);
        assert.ok(got.text.endsWith(`\r\n\r\nbody of ${key}`), `GET ${target}: its own bytes`);
      }
      const keys = await listKeys(src.url);
      assert.deepEqual(keys.sort(), cases.map(([, k]) => k).sort(), "exactly the literal keys");
      for (const resolved of ["b", "q", "y", "z", "w"]) {
        assert.equal(await getObject(src.url, resolved), null, `no object '${resolved}'`);
      }
      // A path that climbs out of /v1/objects/ names a key, not the listing.
      const climb = await rawExchange(src.port, raw("GET", "/v1/objects/../../../nothing"));
      assert.equal(climb.status, 404, climb.text.slice(0, 300));
      assert.equal(rawJson(climb).error, "not_found");
      const del = await rawExchange(src.port, raw("DELETE", "/v1/objects/a/../b"));
      assert.equal(del.status, 204);
      assert.equal((await listKeys(src.url)).includes("a/../b"), false);
      // List parameters: decoded once; not UTF-8 is a clear 400.
      assert.deepEqual(await listKeys(src.url, "&prefix=%2E%2E%2F"), ["../../../w", "../y"]);
      for (const q of ["prefix=%FF", "start-after=%C3%28", "prefix=%zz"]) {
        const a = await request(`${src.url}/v1/objects?${q}`);
        const err = assertJsonError(a, 400, q);
        assert.equal(err.error, "bad_request", q);
      }
    } finally {
      await src.kill();
    }
  });
});

Deno.test("conditional requests: 304/412, and a refused write or delete changes nothing", async () => {
  const seed = testSeed(0xc0d1);
  await withSeed(seed, "conditional", () =>
    withTempDir("refsync-cond-", async (dir) => {
      const rng = new Prng(seed);
      const src = await spawn(dir);
      try {
        const url = objectUrl(src.url, "c");
        const v1 = rng.bytes(2 * MiB + 3); // a multi-record PUT
        const created = await putObject(src.url, "c", v1, { "If-None-Match": "*" });
        assert.equal(created.status, 201, "create-only on a new key creates");
        const etag = `"${etagHex(v1)}"`;
        assert.equal(created.headers.get("ETag"), etag);
        const head = await request(url, { method: "HEAD" });
        const lastModified = head.headers.get("Last-Modified")!;
        const unchanged = async (when: string) => {
          const got = await getObject(src.url, "c");
          assert.ok(got, `${when}: the object is there`);
          assert.equal(got.etag, etag, `${when}: the ETag is unchanged`);
          assert.equal(blake3Hex(got.bytes), blake3Hex(v1), `${when}: the bytes are unchanged`);
        };

        // ---- reads: 304 carries the validators and no body; 412 is JSON
        for (const method of ["GET", "HEAD"]) {
          for (
            const h of <Array<Record<string, string>>> [
              { "If-None-Match": etag },
              { "If-None-Match": `"nope", W/${etag}` },
              { "If-None-Match": "*" },
              { "If-Modified-Since": lastModified },
            ]
          ) {
            const a = await request(url, { method, headers: h });
            assert.equal(a.status, 304, `${method} ${JSON.stringify(h)}`);
            assert.equal(a.headers.get("ETag"), etag);
            assert.equal(a.bytes.length, 0);
          }
          for (
            const h of <Array<Record<string, string>>> [
              { "If-None-Match": `"nope"` },
              { "If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT" },
              { "If-Match": etag },
              { "If-Unmodified-Since": lastModified },
            ]
          ) {
            const a = await request(url, { method, headers: h });
            assert.equal(a.status, 200, `${method} ${JSON.stringify(h)}`);
            if (method === "GET") assert.equal(a.bytes.length, v1.length);
          }
        }
        for (
          const h of <Array<Record<string, string>>> [
            { "If-Match": `"nope"` },
            { "If-Match": `W/${etag}` },
            { "If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT" },
          ]
        ) {
          const a = await request(url, { headers: h });
          assert.equal(assertJsonError(a, 412, JSON.stringify(h)).error, "precondition_failed");
        }
        assertJsonError(await request(url, { headers: { "If-Match": "nope" } }), 400, "bad tag");

        // ---- writes: refused with 412, nothing changes
        const refusals: Array<[string, RequestInit]> = [
          ["create-only on an existing key", { headers: { "If-None-Match": "*" } }],
          ["If-None-Match of the current ETag", { headers: { "If-None-Match": etag } }],
          ["a stale If-Match", { headers: { "If-Match": `"${"0".repeat(64)}"` } }],
          ["If-Match on a weak ETag", { headers: { "If-Match": `W/${etag}` } }],
          ["If-Unmodified-Since before the mtime", {
            headers: { "If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT" },
          }],
          ["a ranged write with a stale If-Match", {
            headers: { "If-Match": `"x"`, "Content-Range": "bytes 0-9/*" },
          }],
        ];
        for (const [name, init] of refusals) {
          const size = init.headers && "Content-Range" in init.headers ? 10 : 3 * MiB;
          const a = await request(url, { ...init, method: "PUT", body: rng.bytes(size) });
          assert.equal(assertJsonError(a, 412, name).error, "precondition_failed", name);
        }
        const refusedDelete = await request(url, {
          method: "DELETE",
          headers: { "If-Match": `"nope"` },
        });
        assertJsonError(refusedDelete, 412, "DELETE with a stale If-Match");
        await unchanged("after the refused writes");
        assert.equal(
          (await request(objectUrl(src.url, "other"), {
            method: "PUT",
            headers: { "If-Match": "*" },
            body: "x",
          })).status,
          412,
          "If-Match: * needs an object",
        );
        assert.equal(await getObject(src.url, "other"), null, "the refused create left nothing");

        // ---- writes that pass
        const v2 = rng.bytes(5000);
        const replaced = await putObject(src.url, "c", v2, { "If-Match": etag });
        assert.equal(replaced.status, 200, JSON.stringify(replaced.json));
        const etag2 = `"${etagHex(v2)}"`;
        const deleted = await request(url, { method: "DELETE", headers: { "If-Match": etag2 } });
        assert.equal(deleted.status, 204);
        assert.equal(await getObject(src.url, "c"), null);

        // ---- a race of two create-only PUTs: exactly one wins
        for (let round = 0; round < 3; round++) {
          const key = `race/${round}`;
          const bodies = [rng.bytes(MiB + 100), rng.bytes(MiB + 200)];
          const gates: Array<() => void> = [];
          const puts = bodies.map((bytes) => {
            const gate = new Promise<void>((resolve) => gates.push(resolve));
            const body = new ReadableStream<Uint8Array>({
              async start(controller) {
                controller.enqueue(bytes.subarray(0, 1000));
                await gate;
                controller.enqueue(bytes.subarray(1000));
                controller.close();
              },
            });
            return streamingPut(src.port, `/v1/objects/${key}`, body, {
              length: bytes.length,
              headers: { "If-None-Match": "*" },
            });
          });
          await sleep(200); // both requests are in, their bodies half sent
          for (const open of gates) open();
          const answers = await Promise.all(puts);
          const statuses = answers.map((a) => a.status).sort();
          assert.deepEqual(statuses, [201, 412], `round ${round}: ${JSON.stringify(answers)}`);
          const winner = bodies[answers.findIndex((a) => a.status === 201)];
          const got = await getObject(src.url, key);
          assert.equal(
            etagValue(got!.etag),
            etagHex(winner),
            `round ${round}: the winner's bytes`,
          );
        }
      } finally {
        await src.kill();
      }
    }));
});

Deno.test("Range and Content-Range follow RFC 9110", async () => {
  const seed = testSeed(0x4a9e);
  await withSeed(seed, "range", () =>
    withTempDir("refsync-range-", async (dir) => {
      const rng = new Prng(seed);
      const src = await spawn(dir);
      try {
        const bytes = rng.bytes(1000);
        assert.equal((await putObject(src.url, "r", bytes)).status, 201);
        const url = objectUrl(src.url, "r");
        const etag = `"${etagHex(bytes)}"`;
        const partial: Array<[string, number, number]> = [
          ["Bytes=0-9", 0, 10],
          ["BYTES=990-", 990, 1000],
          ["bytes=900-5000", 900, 1000],
          ["bytes=10-99999999999999999999", 10, 1000],
          ["bytes=-5", 995, 1000],
        ];
        for (const [range, start, end] of partial) {
          const a = await request(url, { headers: { Range: range } });
          assert.equal(a.status, 206, range);
          assert.equal(a.headers.get("Content-Range"), `bytes ${start}-${end - 1}/1000`, range);
          assert.deepEqual(a.bytes, bytes.subarray(start, end), range);
        }
        // Not one byte range: ignored, the whole object.
        for (const range of ["bytes=0-1,5-6", "bytes=abc", "items=0-5", "bytes=5-2", ""]) {
          const a = await request(url, { headers: { Range: range } });
          assert.equal(a.status, 200, JSON.stringify(range));
          assert.equal(a.headers.get("Content-Range"), null);
          assert.deepEqual(a.bytes, bytes, range);
        }
        // A suffix of an empty object is satisfiable and empty: the whole (empty) object.
        assert.equal((await putObject(src.url, "empty", new Uint8Array(0))).status, 201);
        const empty = await request(objectUrl(src.url, "empty"), {
          headers: { Range: "bytes=-5" },
        });
        assert.equal(empty.status, 200);
        assert.equal(empty.bytes.length, 0);
        // If-Range: the range only for the current strong ETag.
        const ifRange = await request(url, { headers: { Range: "bytes=0-9", "If-Range": etag } });
        assert.equal(ifRange.status, 206);
        const stale = await request(url, { headers: { Range: "bytes=0-9", "If-Range": `"x"` } });
        assert.equal(stale.status, 200);
        assert.equal(stale.bytes.length, 1000);
        // HEAD ignores Range.
        const head = await request(url, { method: "HEAD", headers: { Range: "bytes=0-9" } });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("Content-Length"), "1000");

        // Content-Range with a complete length: it must be the size after the write.
        const patch = (range: string, body: Uint8Array) =>
          request(url, {
            method: "PUT",
            headers: { "Content-Range": range },
            body: body as BodyInit,
          });
        for (const range of ["bytes 0-9/2000", "bytes 0-9/999", "bytes 995-1004/1004"]) {
          assertJsonError(await patch(range, rng.bytes(10)), 400, range);
        }
        assert.equal(etagValue((await getObject(src.url, "r"))!.etag), etagHex(bytes));
        const p1 = rng.bytes(10);
        assert.equal((await patch("bytes 0-9/1000", p1)).status, 200);
        bytes.set(p1, 0);
        const p2 = rng.bytes(10);
        assert.equal((await patch("bytes 995-1004/1005", p2)).status, 200);
        const grown = new Uint8Array(1005);
        grown.set(bytes);
        grown.set(p2, 995);
        assert.deepEqual((await getObject(src.url, "r"))!.bytes, grown);
        const fresh = await request(objectUrl(src.url, "fresh"), {
          method: "PUT",
          headers: { "Content-Range": "bytes 0-9/10" },
          body: rng.bytes(10),
        });
        assert.equal(fresh.status, 201);
      } finally {
        await src.kill();
      }
    }));
});

Deno.test("a body that stalls past --body-idle-timeout gets 408, nothing of it applied", async () => {
  const seed = testSeed(0x408);
  await withSeed(seed, "idle body", () =>
    withTempDir("refsync-idle-", async (dir) => {
      const rng = new Prng(seed);
      let src = await spawn(dir);
      try {
        const kept = rng.bytes(3 * MiB);
        assert.equal((await putObject(src.url, "kept", kept)).status, 201);
        const stalls: Array<[string, string, Uint8Array]> = [
          ["a small new object", "/v1/objects/small", rng.bytes(3)],
          [
            "an overwrite stalled after 1.5 MiB (a transaction)",
            "/v1/objects/kept",
            rng.bytes(1.5 * MiB),
          ],
          ["a ranged write", "/v1/objects/kept", rng.bytes(100)],
        ];
        for (const [name, path, sent] of stalls) {
          const ranged = name === "a ranged write";
          const head = `PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
            (ranged
              ? "Content-Range: bytes 0-999/*\r\nContent-Length: 1000\r\n"
              : `Content-Length: ${3 * MiB}\r\n`) +
            "\r\n";
          const head8 = new TextEncoder().encode(head);
          const bytes = new Uint8Array(head8.length + sent.length);
          bytes.set(head8);
          bytes.set(sent, head8.length);
          const started = performance.now();
          const a = await rawExchange(src.port, bytes, 20 * IDLE_MS);
          const took = performance.now() - started;
          assert.equal(a.status, 408, `${name}: ${a.text.slice(0, 300)}`);
          assert.equal(rawJson(a).error, "request_timeout", name);
          assert.ok(took >= IDLE_MS * 0.9, `${name}: cut after ${took} ms, before the bound`);
        }
        const check = async (when: string) => {
          assert.equal(await getObject(src.url, "small"), null, `${when}: nothing created`);
          const got = await getObject(src.url, "kept");
          assert.equal(etagValue(got!.etag), etagHex(kept), `${when}: 'kept' unchanged`);
        };
        await check("after the stalls");
        await src.kill(); // recovery replays the log: the cut bodies must stay unapplied
        src = await spawn(dir);
        await check("after a crash and replay");
      } finally {
        await src.kill();
      }
    }));
});

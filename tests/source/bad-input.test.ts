/**
 * Bad input against a real source process (invariant 8 of docs/internals.md): every
 * malformed key, range, Content-Range, oversized body, wrong method, unknown
 * path and bad list parameter gets a clear 4xx JSON `{error, message}`; raw
 * malformed HTTP gets a 4xx or a closed connection; and throughout, the
 * process keeps serving and the objects written before are intact, also
 * after a crash and a restart (a refused write must leave nothing in the log
 * that replay would apply).
 *
 * @module
 */
import { compareUtf8 } from "../support/bytes.ts";
import { equalBytes } from "../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import {
  adminAuth,
  type ApplianceProcess,
  spawnSource,
  withTempDir,
} from "../support/appliance.ts";
import { etagHex, etagValue } from "../support/blake3.ts";
import {
  assertJsonError,
  getObject,
  objectUrl,
  putObject,
  putRange,
  rawExchange,
  request,
  requestJson,
} from "../support/http.ts";
import { Prng, randomStream, testSeed, withSeed } from "../support/prng.ts";

const MiB = 1 << 20;
/** The source runs with this --max-object-bytes. */
const MAX_OBJECT = 4 * MiB;

/** One bad HTTP request and the answer it must get. */
interface BadCase {
  name: string;
  method: string;
  /** Path and query, appended to the source URL. */
  path: string;
  headers?: Record<string, string>;
  body?: BodyInit | (() => BodyInit);
  status: number | number[];
  /** Expected `error` code, when it is fixed by the API. */
  code?: string;
  /** Extra check of the answer. */
  check?: (headers: Headers) => void;
}

/** A stream of `n` bytes in 64 KiB chunks: fetch sends it chunked, without Content-Length. */
function chunked(seed: number, n: number): ReadableStream<Uint8Array> {
  return randomStream(seed, n, 64 * 1024);
}

Deno.test("bad input: clear 4xx JSON errors, the source keeps serving, nothing is lost", async () => {
  const seed = testSeed(0xbad1);
  await withSeed(seed, "bad-input", () =>
    withTempDir("refsync-badinput-", async (dir) => {
      const rng = new Prng(seed);
      let src: ApplianceProcess = await spawnSource(dir, [
        "--max-object-bytes",
        String(MAX_OBJECT),
      ]);
      try {
        // ---- objects that must survive everything below
        const kept = new Map<string, Uint8Array>([
          ["keep/a", rng.bytes(100 * 1024 + 7)],
          ["keep/b", rng.bytes(3 * MiB + 1)], // a multi-record (transaction) PUT
          ["keep/empty", new Uint8Array(0)],
          ["victim", rng.bytes(300 * 1024)],
          ["k".repeat(1024), rng.bytes(10)], // the longest allowed key
          ["€".repeat(341), rng.bytes(11)], // 1023 bytes of UTF-8
        ]);
        for (const [key, bytes] of kept) {
          const put = await putObject(src.url, key, bytes);
          assert.equal(put.status, 201, `PUT ${key.slice(0, 20)}: ${JSON.stringify(put.json)}`);
          assert.equal(put.json.etag, etagHex(bytes));
        }
        const intact = async (when: string) => {
          assert.equal(src.exited, null, `the source exited ${when}: ${src.stderr.slice(-2000)}`);
          for (const [key, bytes] of kept) {
            const got = await getObject(src.url, key);
            assert.ok(got, `${when}: ${key.slice(0, 20)} is gone`);
            assert.ok(equalBytes(got.bytes, bytes), `${when}: ${key.slice(0, 20)} changed`);
            assert.equal(
              etagValue(got.etag),
              etagHex(bytes),
              `${when}: ETag of ${key.slice(0, 20)}`,
            );
          }
        };
        await intact("after setup");

        const cases: BadCase[] = [
          // ---- keys
          {
            name: "empty key PUT",
            method: "PUT",
            path: "/v1/objects/",
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "empty key DELETE",
            method: "DELETE",
            path: "/v1/objects/",
            status: 400,
            code: "bad_key",
          },
          {
            name: "key of 1025 bytes",
            method: "PUT",
            path: `/v1/objects/${"k".repeat(1025)}`,
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "key of 342 '€' (1026 bytes, 342 characters)",
            method: "PUT",
            path: `/v1/objects/${encodeURIComponent("€".repeat(342))}`,
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "key of 1025 bytes, GET",
            method: "GET",
            path: `/v1/objects/${"k".repeat(1025)}`,
            status: 400,
            code: "bad_key",
          },
          {
            name: "NUL in key (%00)",
            method: "PUT",
            path: "/v1/objects/a%00b",
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "NUL in key, GET",
            method: "GET",
            path: "/v1/objects/%00",
            status: 400,
            code: "bad_key",
          },
          {
            name: "NUL in key, DELETE",
            method: "DELETE",
            path: "/v1/objects/a%00",
            status: 400,
            code: "bad_key",
          },
          {
            name: "bad percent-encoding %zz",
            method: "PUT",
            path: "/v1/objects/a%zz",
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "truncated escape %E0%A4%A",
            method: "GET",
            path: "/v1/objects/a%E0%A4%A",
            status: 400,
            code: "bad_key",
          },
          {
            name: "invalid UTF-8 %C3%28",
            method: "PUT",
            path: "/v1/objects/%C3%28",
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "UTF-16 surrogate %ED%A0%80",
            method: "PUT",
            path: "/v1/objects/%ED%A0%80",
            body: "x",
            status: 400,
            code: "bad_key",
          },
          {
            name: "stray %",
            method: "DELETE",
            path: "/v1/objects/50%",
            status: 400,
            code: "bad_key",
          },
          // ---- Range (reads); one that is not a single byte range is served in full
          // (tests/source/http-semantics.test.ts)
          {
            name: "Range starting at a 20-digit offset",
            method: "GET",
            path: "/v1/objects/keep/a",
            headers: { Range: "bytes=99999999999999999999-" },
            status: 416,
            code: "range_not_satisfiable",
          },
          ...[
            ["keep/a", "bytes=102407-"], // first byte == size
            ["keep/a", "bytes=200000-300000"],
            ["keep/a", "bytes=-0"],
            ["keep/empty", "bytes=0-"],
          ].map(([key, r]): BadCase => ({
            name: `unsatisfiable Range '${r}' on ${key}`,
            method: "GET",
            path: `/v1/objects/${key}`,
            headers: { Range: r },
            status: 416,
            code: "range_not_satisfiable",
            check: (h) => {
              const size = kept.get(key)!.length;
              assert.equal(h.get("Content-Range"), `bytes */${size}`, `416 names the size (${r})`);
            },
          })),
          // ---- Content-Range (ranged writes)
          ...[
            "bytes 5-2/*",
            "bytes a-b/*",
            "bytes 0-9/5",
            "bytes 0-9/9",
            "0-9/*",
            "bytes */100",
            "bytes 0-9",
            "bytes=0-9/*",
            "bytes -9/*",
            "bytes 0-/*",
            "bytes 0-99999999999999999/*",
          ].map((r): BadCase => ({
            name: `malformed Content-Range '${r}'`,
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": r },
            body: new Uint8Array(10),
            status: 400,
            code: "bad_range",
          })),
          {
            name: "Content-Range longer than the body (Content-Length)",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": "bytes 0-999/*" },
            body: new Uint8Array(500),
            status: 400,
            code: "bad_range",
          },
          {
            name: "Content-Range shorter than the body (Content-Length)",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": "bytes 0-99/*" },
            body: new Uint8Array(500),
            status: 400,
            code: "bad_range",
          },
          {
            name: "Content-Range longer than a chunked body",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": "bytes 0-999/*" },
            body: () => chunked(1, 500),
            status: 400,
            code: "bad_range",
          },
          {
            name: "Content-Range shorter than a chunked body",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": "bytes 0-999/*" },
            body: () => chunked(2, 1500),
            status: 400,
            code: "bad_range",
          },
          {
            // The body spans three log records before the mismatch shows: a
            // transaction that never gets its COMMIT, so never applied.
            name: "Content-Range 3 MiB, chunked body of 2.5 MiB (multi-record)",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": `bytes 4096-${4096 + 3 * MiB - 1}/*` },
            body: () => chunked(3, 2.5 * MiB),
            status: 400,
            code: "bad_range",
          },
          // ---- over --max-object-bytes
          {
            name: "body over --max-object-bytes, with Content-Length",
            method: "PUT",
            path: "/v1/objects/keep/a",
            body: () => new Uint8Array(MAX_OBJECT + 1),
            status: 413,
            code: "too_large",
          },
          {
            name: "body over --max-object-bytes, chunked (no Content-Length)",
            method: "PUT",
            path: "/v1/objects/keep/a",
            body: () => chunked(4, MAX_OBJECT + 5000),
            status: 413,
            code: "too_large",
          },
          {
            name: "body far over --max-object-bytes, chunked, new key",
            method: "PUT",
            path: "/v1/objects/toobig",
            body: () => chunked(5, 4 * MAX_OBJECT),
            status: 413,
            code: "too_large",
          },
          {
            name: "ranged write ending past --max-object-bytes",
            method: "PUT",
            path: "/v1/objects/victim",
            headers: { "Content-Range": `bytes ${MAX_OBJECT - 5}-${MAX_OBJECT + 4}/*` },
            body: new Uint8Array(10),
            status: 413,
            code: "too_large",
          },
          // ---- methods
          {
            name: "POST on an object",
            method: "POST",
            path: "/v1/objects/keep/a",
            body: "x",
            status: 405,
          },
          {
            name: "PATCH on an object",
            method: "PATCH",
            path: "/v1/objects/keep/a",
            body: "x",
            status: 405,
          },
          { name: "POST on the list", method: "POST", path: "/v1/objects", body: "x", status: 405 },
          { name: "GET on /v1/admin/cp", method: "GET", path: "/v1/admin/cp", status: 405 },
          {
            name: "POST on /v1/admin/digest",
            method: "POST",
            path: "/v1/admin/digest",
            headers: adminAuth(src), // without it every admin POST is a 401
            status: 405,
          },
          {
            name: "PUT on /v1/admin/stats",
            method: "PUT",
            path: "/v1/admin/stats",
            body: "x",
            status: 405,
          },
          // ---- unknown paths
          { name: "unknown path /", method: "GET", path: "/", status: 404 },
          { name: "unknown path /nope", method: "GET", path: "/nope", status: 404 },
          {
            name: "unknown path /v1/objectsx/a",
            method: "GET",
            path: "/v1/objectsx/a",
            status: 404,
          },
          {
            name: "unknown path /v2/objects/a",
            method: "PUT",
            path: "/v2/objects/a",
            body: "x",
            status: 404,
          },
          {
            name: "unknown admin call",
            method: "POST",
            path: "/v1/admin/format",
            headers: adminAuth(src),
            status: 404,
          },
          // ---- list parameters
          ...["0", "-1", "abc", "10001", "1.5", "", "1e3x", "99999999999999999999"].map((
            l,
          ): BadCase => ({
            name: `list with limit=${JSON.stringify(l)}`,
            method: "GET",
            path: `/v1/objects?limit=${encodeURIComponent(l)}`,
            status: 400,
          })),
          // ---- misc
          {
            name: "DELETE of a missing object",
            method: "DELETE",
            path: "/v1/objects/nope",
            status: 404,
            code: "not_found",
          },
          {
            name: "GET of a missing object",
            method: "GET",
            path: "/v1/objects/nope",
            status: 404,
            code: "not_found",
          },
        ];

        for (let i = 0; i < cases.length; i++) {
          const c = cases[i];
          const body = typeof c.body === "function" ? c.body() : c.body;
          const a = await request(`${src.url}${c.path}`, {
            method: c.method,
            headers: c.headers,
            body,
          });
          const err = assertJsonError(a, c.status, c.name);
          if (c.code) assert.equal(err.error, c.code, `${c.name}: error code`);
          c.check?.(a.headers);
          assert.equal(src.exited, null, `${c.name}: the source exited`);
          if (i % 8 === 7) await intact(`after '${c.name}'`);
        }
        // HEAD answers carry no body: only the status.
        for (
          const [name, path, status] of [
            ["HEAD, key of 1025 bytes", `/v1/objects/${"k".repeat(1025)}`, 400],
            ["HEAD, NUL in key", "/v1/objects/%00", 400],
            ["HEAD, bad percent-encoding", "/v1/objects/%zz", 400],
            ["HEAD, missing object", "/v1/objects/nope", 404],
          ] as const
        ) {
          const a = await request(`${src.url}${path}`, { method: "HEAD" });
          assert.equal(a.status, status, name);
        }
        await intact("after the bad requests");
        assert.equal(await getObject(src.url, "toobig"), null, "a refused PUT created nothing");

        // ---- raw malformed HTTP: a 4xx, or the connection closed; never a 2xx or a hang
        const raws: Array<[string, string | Uint8Array]> = [
          ["not HTTP", "GARBAGE\r\n\r\n"],
          ["HTTP/9.9", "GET / HTTP/9.9\r\n\r\n"],
          [
            "header without colon",
            "GET /v1/objects/keep/a HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
          ],
          [
            "Content-Length: abc",
            "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
          ],
          [
            "Content-Length: -1",
            "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
          ],
          [
            "two different Content-Lengths",
            "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
          ],
          [
            "Content-Length and chunked",
            "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
          ],
          [
            "bad chunk size",
            "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
          ],
          ["binary junk", new Uint8Array([0, 1, 2, 0xff, 0xfe, 13, 10, 13, 10])],
          [
            "100 KB header",
            `GET /v1/objects/keep/a HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(100_000)}\r\n\r\n`,
          ],
          ["PUT without length (411)", "PUT /v1/objects/x HTTP/1.1\r\nHost: a\r\n\r\n"],
          ["HTTP/1.0 PUT without length (411)", "PUT /v1/objects/x HTTP/1.0\r\n\r\nabc"],
          [
            "request line only, no CRLF CRLF, then EOF",
            "GET /v1/objects/keep/a HTTP/1.1\r\nHost: a",
          ],
          ["random bytes", rng.bytes(2000)],
        ];
        for (const [name, bytes] of raws) {
          const r = await rawExchange(src.port, bytes, 2000);
          const ok = (r.status !== null && r.status >= 400 && r.status < 500) ||
            (r.status === null && r.closed) ||
            (r.status === null && name.startsWith("request line only"));
          assert.ok(
            ok,
            `raw '${name}': status ${r.status}, closed ${r.closed}: ${r.text.slice(0, 200)}`,
          );
          assert.equal(src.exited, null, `raw '${name}': the source exited`);
        }
        assert.equal(await getObject(src.url, "x"), null, "no raw request created 'x'");

        // ---- a body cut short: the client announces 100 bytes, sends 3 and goes away.
        // Nothing may be acknowledged or applied. (The answer never reaches the client.)
        {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: src.port });
          try {
            await conn.write(
              new TextEncoder().encode(
                "PUT /v1/objects/victim HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
              ),
            );
            await conn.closeWrite();
            const buf = new Uint8Array(4096);
            const n = await conn.read(buf).catch(() => null);
            const head = n ? new TextDecoder().decode(buf.subarray(0, n)) : "";
            const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
            assert.ok(status === 0 || status >= 400, `cut-short body: ${head.slice(0, 200)}`);
            if (status >= 500) {
              console.warn(
                `bad-input: a body cut short is answered ${status}, not 4xx (see report)`,
              );
            }
          } finally {
            conn.close();
          }
        }

        // ---- the source still serves: a PUT and a GET work, listing works
        const fresh = rng.bytes(12345);
        const put = await putObject(src.url, "after/fresh", fresh);
        assert.equal(put.status, 201, JSON.stringify(put.json));
        kept.set("after/fresh", fresh);
        // A valid ranged write still works too.
        const patch = rng.bytes(777);
        const pr = await putRange(src.url, "victim", 1000, patch);
        assert.equal(pr.status, 200, JSON.stringify(pr.json));
        const victim = kept.get("victim")!;
        victim.set(patch, 1000);
        const range = await request(objectUrl(src.url, "victim"), {
          headers: { Range: "bytes=1000-1776" },
        });
        assert.equal(range.status, 206);
        assert.ok(equalBytes(range.bytes, patch), "206 body is the patch");
        await intact("after the raw requests");
        const list = await requestJson<
          { objects: Array<{ key: string; size: number }>; next: string | null }
        >(
          `${src.url}/v1/objects?limit=100`,
        );
        assert.equal(list.status, 200);
        assert.deepEqual(
          list.json.objects.map((o) => [o.key, o.size]),
          [...kept].map(([k, v]) => [k, v.length]).sort((a, b) =>
            compareUtf8(a[0] as string, b[0] as string)
          ),
          "the listing is exactly the kept objects",
        );

        // ---- crash and restart: replay must not apply any refused write
        const cp = await requestJson(`${src.url}/v1/admin/cp`, {
          method: "POST",
          headers: adminAuth(src),
        });
        assert.equal(cp.status, 200, JSON.stringify(cp.json));
        // One more refused multi-record write after the CP, so replay meets its records.
        const late = await request(objectUrl(src.url, "keep/b"), {
          method: "PUT",
          headers: { "Content-Range": `bytes 0-${3 * MiB - 1}/*` },
          body: chunked(6, 2 * MiB + 5),
        });
        assertJsonError(late, 400, "late mismatch");
        const late2 = await request(objectUrl(src.url, "keep/a"), {
          method: "PUT",
          body: chunked(7, MAX_OBJECT + 1),
        });
        assertJsonError(late2, 413, "late 413");
        await src.kill();
        src = await spawnSource(dir, ["--max-object-bytes", String(MAX_OBJECT)]);
        await intact("after a crash and restart");
      } finally {
        await src.kill();
      }
    }));
});

/**
 * Who may change an appliance (real processes on 127.0.0.1):
 *
 * - every admin mutation (`POST /v1/admin/cp` on both sides, `POST
 *   /v1/admin/promote`) without the pair token or with a wrong one is a 401
 *   with `WWW-Authenticate` and changes nothing (the pair stays a pair); with
 *   the token (scheme in any case) it is done;
 * - `refsync promote` without a token exits 2 with the usage and promotes
 *   nothing; with a wrong one it fails; with the right one it promotes;
 * - a standalone source keeps a pair token in DATA/pair-token, across
 *   restarts, and its CP needs it; stats and digest stay open;
 * - with `--client-token` every object call on both appliances needs it, the
 *   pair token does not stand in for it, and replication keeps working;
 * - off loopback without `--client-token` an appliance refuses to start, exit
 *   2, before it touches its data directory;
 * - every refusal is logged (`auth.refused`) with the peer and the path,
 *   never with a token.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type ApplianceProcess,
  runCli,
  spawnAppliance,
  spawnSource,
  withTempDir,
} from "../support/appliance.ts";
import { type Answer, assertJsonError, objectUrl } from "../support/http.ts";
import {
  adminCp,
  assertSameDigest,
  bearer,
  call,
  callJson,
  digestOf,
  spawnDest,
  spawnPair,
  statsOf,
  stopAll,
} from "./pair.ts";

/** Asserts a 401 that names the scheme to use. */
function assertUnauthorized(a: Answer, context: string, message: RegExp): void {
  const body = assertJsonError(a, 401, context);
  assert.equal(body.error, "unauthorized", `${context}: error code`);
  assert.match(body.message, message, `${context}: message`);
  assert.match(a.headers.get("WWW-Authenticate") ?? "", /^Bearer /, `${context}: WWW-Authenticate`);
}

/** The `auth.refused` lines an appliance logged. */
function refusals(p: ApplianceProcess): Array<Record<string, unknown>> {
  return p.stderr.split("\n").filter((l) => l.includes('"auth.refused"')).map((l) => JSON.parse(l));
}

/** Asserts that `p` logged each refused path, with a peer address, and no token anywhere. */
function assertRefusalsLogged(p: ApplianceProcess, paths: string[], secrets: string[]): void {
  const lines = refusals(p);
  for (const path of paths) {
    assert.ok(lines.some((l) => l.path === path), `no auth.refused for ${path}: ${p.stderr}`);
  }
  for (const l of lines) {
    assert.equal(l.level, "warn");
    assert.match(String(l.peer), /^127\.0\.0\.1:\d+$/, `peer of ${JSON.stringify(l)}`);
  }
  for (const secret of secrets) {
    assert.ok(!p.stderr.includes(secret), `the log shows a token: ${secret}`);
  }
}

Deno.test("admin auth: CP and promotion need the pair token on both sides; promote CLI too", async () => {
  await withTempDir("refsync-admin-auth-", async (dir) => {
    const pair = await spawnPair(dir, {
      sourceArgs: ["--cp-interval", "0"],
      destArgs: ["--cp-interval", "0"],
    });
    const { src, dst, token } = pair;
    const wrong = "wrong-" + token;
    try {
      const put = await call(objectUrl(src.url, "a"), { method: "PUT", body: "first" });
      assert.equal(put.status, 201, `PUT a: ${put.status} ${put.text}`);

      const mutations: Array<[ApplianceProcess, string]> = [
        [src, "/v1/admin/cp"],
        [dst, "/v1/admin/promote"],
        [dst, "/v1/admin/cp"],
      ];
      for (const [p, path] of mutations) {
        const none = await call(`${p.url}${path}`, { method: "POST" });
        assertUnauthorized(none, `POST ${path} without a token`, /needs the pair token/);
        const bad = await call(`${p.url}${path}`, { method: "POST", headers: bearer(wrong) });
        assertUnauthorized(bad, `POST ${path} with a wrong token`, /wrong pair token/);
      }
      // Nothing changed: no CP was taken, the destination is still one, the pair still works.
      assert.equal((await statsOf(src)).cp.committed, 0, "refused CP taken");
      assert.equal((await statsOf(dst)).role, "destination", "refused promotion done");
      const second = await call(objectUrl(src.url, "b"), { method: "PUT", body: "second" });
      assert.equal(second.status, 201, `PUT b after the refusals: ${second.status} ${second.text}`);

      // With the token (the scheme is case-insensitive) the CP commits on both sides.
      const cp = await callJson<{ cp: number }>(`${src.url}/v1/admin/cp`, {
        method: "POST",
        headers: { Authorization: `bearer ${token}` },
      });
      assert.equal(cp.status, 200, `CP with the token: ${cp.status} ${cp.text}`);
      assert.equal(cp.json.cp, 1);
      await assertSameDigest(src, dst, "after the CP");

      // The promote CLI: no token at all is a usage error, and nothing is promoted.
      const bare = await runCli(["promote", "--url", dst.url]);
      assert.equal(bare.code, 2, `promote without a token: exit ${bare.code}\n${bare.stderr}`);
      assert.match(bare.stderr, /needs the pair token/);
      assert.match(bare.stderr, /usage:/, "the usage is printed");
      const wrongCli = await runCli(["promote", "--url", dst.url, "--token", wrong]);
      assert.equal(wrongCli.code, 1, `promote with a wrong token: exit ${wrongCli.code}`);
      assert.match(wrongCli.stdout, /unauthorized/);
      assert.equal((await statsOf(dst)).role, "destination", "promoted without the token");

      const promoted = await runCli(["promote", "--url", dst.url], {
        env: { REFSYNC_TOKEN: token },
      });
      assert.equal(promoted.code, 0, `promote: exit ${promoted.code}\n${promoted.stderr}`);
      assert.deepEqual(JSON.parse(promoted.stdout), await digestOf(dst), "promote's answer");
      assert.equal((await statsOf(dst)).role, "source (promoted)");

      // The promoted appliance guards its CP with the same token.
      const none = await call(`${dst.url}/v1/admin/cp`, { method: "POST" });
      assertUnauthorized(none, "promoted: CP without a token", /needs the pair token/);
      const ok = await call(`${dst.url}/v1/admin/cp`, { method: "POST", headers: bearer(token) });
      assert.equal(ok.status, 200, `promoted: CP with the token: ${ok.status} ${ok.text}`);

      assertRefusalsLogged(src, ["/v1/admin/cp"], [wrong]);
      assertRefusalsLogged(dst, ["/v1/admin/promote", "/v1/admin/cp"], [wrong]);
    } finally {
      await pair.stop();
    }
  });
});

Deno.test("admin auth: a standalone source keeps a pair token in its data directory", async () => {
  await withTempDir("refsync-standalone-token-", async (dir) => {
    let src: ApplianceProcess | null = await spawnSource(dir, ["--cp-interval", "0"]);
    try {
      const token = src.token; // read from DATA/pair-token
      assert.match(token, /^[0-9a-f]{32}$/);
      assert.equal((await Deno.stat(`${dir}/pair-token`)).mode! & 0o077, 0, "owner-only file");
      const put = await call(objectUrl(src.url, "a"), { method: "PUT", body: "x" });
      assert.equal(put.status, 201, "on loopback without --client-token objects are open");

      const none = await call(`${src.url}/v1/admin/cp`, { method: "POST" });
      assertUnauthorized(none, "standalone CP without a token", /needs the pair token/);
      const bad = await call(`${src.url}/v1/admin/cp`, { method: "POST", headers: bearer("x") });
      assertUnauthorized(bad, "standalone CP with a wrong token", /wrong pair token/);
      for (const path of ["/v1/admin/stats", "/v1/admin/digest"]) {
        const open = await call(`${src.url}${path}`);
        assert.equal(open.status, 200, `GET ${path} needs no token`);
      }
      assert.equal((await statsOf(src)).cp.committed, 0, "a refused CP was taken");
      assert.equal((await adminCp(src)).cp, 1);
      assertRefusalsLogged(src, ["/v1/admin/cp"], [token]);

      // A restart keeps the token.
      await src.stop();
      src = await spawnSource(dir, ["--cp-interval", "0"]);
      assert.equal(src.token, token, "the token changed across a restart");
      const again = await call(objectUrl(src.url, "b"), { method: "PUT", body: "y" });
      assert.equal(again.status, 201);
      assert.equal((await adminCp(src)).cp, 2, "CP with the kept token");
    } finally {
      await stopAll(src);
    }
  });
});

Deno.test("client auth: with --client-token every object call on both sides needs it", async () => {
  await withTempDir("refsync-client-token-", async (dir) => {
    const token = "pair-" + crypto.randomUUID();
    const client = "client-" + crypto.randomUUID();
    const dst = await spawnDest(`${dir}/dest`, token, [
      "--cp-interval",
      "0",
      "--client-token",
      client,
    ]);
    let src: ApplianceProcess | null = null;
    try {
      // The source takes its client token from the environment.
      src = await spawnAppliance({
        dataDir: `${dir}/source`,
        args: ["--dest", dst.url, "--token", token, "--cp-interval", "0"],
        env: { REFSYNC_CLIENT_TOKEN: client },
      });
      const key = objectUrl(src.url, "k");
      const refusedPut: Array<[string, Record<string, string>]> = [
        ["no token", {}],
        ["the pair token", bearer(token)],
        ["a wrong token", bearer(client + "x")],
      ];
      for (const [what, headers] of refusedPut) {
        const a = await call(key, { method: "PUT", body: "secret bytes", headers });
        assertUnauthorized(a, `PUT with ${what}`, /client token/);
      }
      const absent = await call(key, { headers: bearer(client) });
      assert.equal(absent.status, 404, "a refused PUT stored something");
      const put = await call(key, { method: "PUT", body: "hello", headers: bearer(client) });
      assert.equal(put.status, 201, `PUT with the client token: ${put.status} ${put.text}`);

      assert.equal((await adminCp(src)).cp, 1, "CP with the pair token");
      for (const p of [src, dst]) {
        const reads: Array<[string, string]> = [
          ["GET", objectUrl(p.url, "k")],
          ["HEAD", objectUrl(p.url, "k")],
          ["GET", `${p.url}/v1/objects`],
        ];
        for (const [method, url] of reads) {
          const none = await call(url, { method });
          assert.equal(none.status, 401, `${p === src ? "source" : "dest"} ${method} ${url}`);
          assert.match(none.headers.get("WWW-Authenticate") ?? "", /^Bearer /);
        }
        const got = await call(objectUrl(p.url, "k"), { headers: bearer(client) });
        assert.equal(got.status, 200, `GET with the client token: ${got.status}`);
        assert.equal(got.text, "hello");
        const open = await call(`${p.url}/v1/admin/stats`);
        assert.equal(open.status, 200, "stats need no token");
      }
      const del = await call(key, { method: "DELETE" });
      assertUnauthorized(del, "DELETE without a token", /needs the client token/);
      await assertSameDigest(src, dst, "replication with the pair token");
      assertRefusalsLogged(src, ["/v1/objects/k"], [client + "x"]);
      assertRefusalsLogged(dst, ["/v1/objects/k", "/v1/objects"], []);
      assert.ok(refusals(src).every((l) => l.token === "client"));
    } finally {
      await stopAll(src, dst);
    }
  });
});

Deno.test("client auth: off loopback without --client-token an appliance refuses to start", async () => {
  await withTempDir("refsync-open-host-", async (dir) => {
    // A documentation address (RFC 5737), on no interface here: nothing could listen on it even if
    // the refusal were missing. The refusal comes before anything is opened or bound.
    const host = "198.51.100.7";
    for (const role of ["source", "dest"]) {
      const data = `${dir}/${role}`;
      const r = await runCli([role, "--host", host, "--port", "0", "--data", data]);
      assert.equal(r.code, 2, `${role} --host ${host}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`--host ${host.replaceAll(".", "\\.")} is not a loopback`));
      assert.match(r.stderr, /--client-token/);
      assert.match(r.stderr, /--insecure-open/);
      assert.ok(!r.stdout.includes('"listening"'), `${role} listened: ${r.stdout}`);
      const created = await Deno.stat(data).then(() => true, () => false);
      assert.equal(created, false, `${role} created its data directory before refusing`);
    }
  });
});

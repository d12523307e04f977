/**
 * The bearer checks of the HTTP API (src/http/auth.ts), on Hono apps in
 * memory: the scheme in any case, 401 JSON with `WWW-Authenticate` for every
 * missing, wrong or malformed credential, the token read per request, every
 * refusal logged with the peer address and never a token; and which calls the
 * appliances guard (admin POSTs: the pair token; object calls: the client
 * token when one is set; stats and digest stay open).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { bearerCredentials, registerAccessChecks, requireToken } from "../../src/http/auth.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { createLogger, type Logger } from "../../src/logging/mod.ts";
import { authHeader } from "../../src/protocol/auth/mod.ts";

/** A logger that keeps its lines, parsed. */
function capture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    logger: createLogger({ level: "debug", sink: (l) => lines.push(JSON.parse(l)) }),
  };
}

/** What `Deno.serve` passes as the second handler argument (the Hono env). */
const PEER = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40123 },
} as unknown as Deno.ServeHandlerInfo;

interface Got {
  status: number;
  challenge: string | null;
  type: string;
  body: { error?: string; message?: string } | string;
}

async function send(app: Hono, path: string, init: RequestInit = {}): Promise<Got> {
  const res = await app.request(path, init, PEER);
  const text = await res.text();
  let body: Got["body"] = text;
  try {
    body = JSON.parse(text);
  } catch {
    // A plain-text route answer.
  }
  return {
    status: res.status,
    challenge: res.headers.get("WWW-Authenticate"),
    type: res.headers.get("Content-Type") ?? "",
    body,
  };
}

function assertRefused(a: Got, what: string, message: RegExp): void {
  assert.equal(a.status, 401, `${what}: status`);
  assert.match(a.challenge ?? "", /^Bearer realm="refsync"/, `${what}: WWW-Authenticate`);
  assert.match(a.type, /application\/json/, `${what}: JSON`);
  const body = a.body as { error?: string; message?: string };
  assert.equal(body.error, "unauthorized", `${what}: error code`);
  assert.match(body.message ?? "", message, `${what}: message`);
}

Deno.test("bearerCredentials: the Bearer scheme in any case, then one or more spaces", () => {
  const cases: Array<[string | undefined, string | null]> = [
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["BEARER abc", "abc"],
    ["bEaReR abc", "abc"],
    ["Bearer   abc", "abc"], // 1*SP (RFC 9110 §11.4)
    ["Bearer a b", "a b"], // the rest is compared whole: it never equals a token "a"
    [undefined, null],
    ["", null],
    ["Bearer", null],
    ["Bearer ", null],
    ["Bearerabc", null],
    ["Basic abc", null],
    ["abc", null],
    [" Bearer abc", null],
    ["Bearer\tabc", null],
  ];
  for (const [header, want] of cases) {
    assert.equal(bearerCredentials(header), want, JSON.stringify(header));
  }
});

Deno.test("requireToken: 401 JSON with WWW-Authenticate unless the token matches; read per request", async () => {
  let token = "s3cret-token";
  const { logger, lines } = capture();
  const app = new Hono();
  app.use("/r/*", requireToken(() => token, { logger }));
  app.get("/r/x", (c) => c.text("ok"));
  for (const scheme of ["Bearer", "bearer", "BEARER", "BeArEr"]) {
    const ok = await send(app, "/r/x", { headers: { Authorization: `${scheme} ${token}` } });
    assert.equal(ok.status, 200, `scheme ${scheme}`);
    assert.equal(ok.body, "ok");
  }
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    ["no header", {}, /needs the pair token/],
    ["wrong token", { Authorization: "Bearer nope" }, /wrong pair token/],
    ["token prefix", { Authorization: `Bearer ${token.slice(0, -1)}` }, /wrong/],
    ["token + suffix", { Authorization: `Bearer ${token}x` }, /wrong/],
    ["other case", { Authorization: `Bearer ${token.toUpperCase()}` }, /wrong/],
    ["empty bearer", { Authorization: "Bearer " }, /needs the pair token/],
    ["no scheme", { Authorization: token }, /needs the pair token/],
    ["Basic scheme", { Authorization: `Basic ${token}` }, /needs the pair token/],
    ["no space", { Authorization: `Bearer${token}` }, /needs the pair token/],
  ];
  for (const [what, headers, message] of refused) {
    assertRefused(await send(app, "/r/x", { headers }), what, message);
  }
  // A changed token takes effect at once; the old one is refused.
  const old = token;
  token = "rotated-token";
  assertRefused(await send(app, "/r/x", { headers: authHeader(old) }), "old token", /wrong/);
  assert.equal((await send(app, "/r/x", { headers: authHeader(token) })).status, 200);

  // Every refusal is one warning with the peer and the path, and never a token.
  const refusals = lines.filter((l) => l.event === "auth.refused");
  assert.equal(refusals.length, refused.length + 1, "one auth.refused per refusal");
  assert.equal(lines.length, refusals.length, "nothing else is logged");
  for (const l of refusals) {
    assert.equal(l.level, "warn");
    assert.equal(l.peer, "127.0.0.1:40123");
    assert.equal(l.path, "/r/x");
    assert.equal(l.method, "GET");
    assert.equal(l.token, "pair");
  }
  assert.deepEqual(refusals.slice(0, 2).map((l) => l.reason), ["missing", "wrong"]);
  const logged = JSON.stringify(lines);
  for (const secret of [old, token, old.slice(0, -1), "nope"]) {
    assert.ok(!logged.includes(secret), `the log holds a token: ${secret}`);
  }
});

Deno.test("requireToken: a client-token check names the client token in its refusals", async () => {
  const app = new Hono();
  app.onError(errorHandler());
  app.use("/r/*", requireToken(() => "t", { kind: "client", logger: capture().logger }));
  app.get("/r/x", (c) => c.text("ok"));
  assertRefused(await send(app, "/r/x"), "no header", /needs the client token/);
  assertRefused(await send(app, "/r/x", { headers: authHeader("u") }), "wrong", /wrong client/);
});

/** An app shaped like an appliance's, behind {@link registerAccessChecks}. */
function appliance(client: string | null): { app: Hono; lines: Array<Record<string, unknown>> } {
  const { logger, lines } = capture();
  const app = new Hono();
  app.onError(errorHandler());
  registerAccessChecks(app, { pair: "pair-secret", client, logger });
  app.post("/v1/admin/cp", (c) => c.text("cp"));
  app.post("/v1/admin/promote", (c) => c.text("promoted"));
  app.post("/v1/admin/verify", (c) => c.text("verified"));
  app.get("/v1/admin/stats", (c) => c.text("stats"));
  app.get("/v1/admin/digest", (c) => c.text("digest"));
  app.all("/v1/admin/cp", (c) => c.text("405", 405));
  app.get("/v1/objects", (c) => c.text("list"));
  app.get("/v1/objects/*", (c) => c.text("read"));
  app.on("HEAD", "/v1/objects/*", (c) => c.body(null, 200));
  app.put("/v1/objects/*", (c) => c.text("written", 201));
  app.delete("/v1/objects/*", (c) => c.body(null, 204));
  return { app, lines };
}

Deno.test("access checks: every admin POST needs the pair token; stats and digest stay open", async () => {
  const { app, lines } = appliance(null);
  const pair = authHeader("pair-secret");
  for (const path of ["/v1/admin/cp", "/v1/admin/promote", "/v1/admin/verify"]) {
    assertRefused(await send(app, path, { method: "POST" }), `POST ${path}`, /pair token/);
    assertRefused(
      await send(app, path, { method: "POST", headers: authHeader("pair-secreT") }),
      `POST ${path}, wrong token`,
      /wrong pair token/,
    );
    const ok = await send(app, path, { method: "POST", headers: pair });
    assert.equal(ok.status, 200, `POST ${path} with the pair token`);
  }
  for (const path of ["/v1/admin/stats", "/v1/admin/digest"]) {
    assert.equal((await send(app, path)).status, 200, `GET ${path} needs no token`);
  }
  // Reads are open: a GET on a POST-only call is its 405, not a 401.
  assert.equal((await send(app, "/v1/admin/cp")).status, 405);
  // Without a client token the object API is open (loopback only: the CLI sees to that).
  assert.equal((await send(app, "/v1/objects/a", { method: "PUT", body: "x" })).status, 201);
  assert.equal((await send(app, "/v1/objects")).status, 200);
  assert.equal(lines.filter((l) => l.event === "auth.refused").length, 6);
  assert.ok(lines.every((l) => l.path !== undefined && l.peer === "127.0.0.1:40123"));
});

Deno.test("access checks: a client token guards every object call, and only it does", async () => {
  const { app } = appliance("client-secret");
  const client = authHeader("client-secret");
  // In order, with the answer each gets once it has the client token.
  const calls: Array<[string, string, RequestInit, number]> = [
    ["PUT", "/v1/objects/a", { body: "x" }, 201],
    ["GET", "/v1/objects/a", {}, 200],
    ["HEAD", "/v1/objects/a", {}, 200],
    ["DELETE", "/v1/objects/a", {}, 204],
    ["GET", "/v1/objects", {}, 200],
    ["GET", "/v1/objects?prefix=a", {}, 200],
    ["GET", "/v1/objects/", {}, 200],
  ];
  for (const [method, path, init, allowed] of calls) {
    const what = `${method} ${path}`;
    const none = await send(app, path, { ...init, method });
    assert.equal(none.status, 401, `${what} without a token`);
    assert.match(none.challenge ?? "", /^Bearer /, `${what}: WWW-Authenticate`);
    if (method !== "HEAD") assertRefused(none, what, /needs the client token/);
    const pairToken = await send(app, path, {
      ...init,
      method,
      headers: authHeader("pair-secret"),
    });
    assert.equal(pairToken.status, 401, `${what} with the pair token instead`);
    const ok = await send(app, path, { ...init, method, headers: client });
    assert.equal(ok.status, allowed, `${what} with the client token`);
  }
  // The client token opens no admin call.
  assert.equal((await send(app, "/v1/admin/cp", { method: "POST", headers: client })).status, 401);
  assert.equal((await send(app, "/v1/admin/stats")).status, 200, "stats stay open");
});

/**
 * Pair authentication (src/protocol/auth/mod.ts): `tokensEqual` is exact
 * string equality, `requireToken` answers 401 JSON for every missing, wrong
 * or malformed Authorization header and reads the token per request, and the
 * helpers produce what the other side expects.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { authHeader, newToken, storedToken, tokensEqual } from "../../src/protocol/auth/mod.ts";
import { requireToken } from "../../src/http/auth.ts";
import { Prng, testSeed } from "../support/prng.ts";

Deno.test("tokensEqual: exact equality, whatever the lengths and characters", () => {
  const same: Array<[string, string]> = [
    ["", ""],
    ["a", "a"],
    ["0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"],
    ["ünïcødé 🙂", "ünïcødé 🙂"],
  ];
  for (const [a, b] of same) {
    assert.equal(tokensEqual(a, b), true, `${JSON.stringify(a)} == ${JSON.stringify(b)}`);
  }
  const different: Array<[string, string]> = [
    ["", "a"],
    ["a", ""],
    ["a", "b"],
    ["a", "aa"],
    ["ab", "abab"], // a repetition: the shorter is cycled over by the loop
    ["abab", "ab"],
    ["token", "tokeN"],
    ["Token", "token"],
    ["token", "token "],
    ["secret", "secre"],
    ["\0", ""],
    ["\0", "\0\0"],
    ["é", "e\u0301"], // same glyph, different code points
    ["é", "\u00c3\u00a9"], // its UTF-8 bytes read as Latin-1
    ["\ud800", "\udc00"], // lone surrogates (TextEncoder maps both to U+FFFD)
    ["a\ud800", "a\ufffd"],
  ];
  for (const [a, b] of different) {
    assert.equal(tokensEqual(a, b), false, `${JSON.stringify(a)} != ${JSON.stringify(b)}`);
  }
});

Deno.test("tokensEqual: agrees with === on random pairs", () => {
  const rng = new Prng(testSeed(0xa07b_1001));
  const alphabet = ["a", "b", "0", "é", "🙂", "\0", " ", "\ud800", "\udc00", "\ufffd"];
  for (let i = 0; i < 3000; i++) {
    const word = () => Array.from({ length: rng.int(6) }, () => rng.pick(alphabet)).join("");
    const a = word();
    const b = rng.chance(0.3) ? a : word();
    assert.equal(tokensEqual(a, b), a === b, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
});

Deno.test("requireToken: 401 JSON unless Authorization is `Bearer <token>`; the token is read per request", async () => {
  let token = "s3cret-token";
  const app = new Hono();
  app.use("/r/*", requireToken(() => token));
  app.get("/r/x", (c) => c.text("ok"));
  const get = async (headers: Record<string, string>) => {
    const res = await app.request("/r/x", { headers });
    return {
      status: res.status,
      type: res.headers.get("Content-Type") ?? "",
      text: await res.text(),
    };
  };
  const ok = await get(authHeader(token));
  assert.equal(ok.status, 200);
  assert.equal(ok.text, "ok");
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    ["no header", {}, /needs the pair token/],
    ["wrong token", { Authorization: "Bearer nope" }, /wrong pair token/],
    ["token prefix", { Authorization: `Bearer ${token.slice(0, -1)}` }, /wrong/],
    ["token + suffix", { Authorization: `Bearer ${token}x` }, /wrong/],
    ["empty bearer", { Authorization: "Bearer " }, /needs the pair token/],
    ["no scheme", { Authorization: token }, /needs the pair token/],
    ["Basic scheme", { Authorization: `Basic ${token}` }, /needs the pair token/],
    ["two spaces", { Authorization: `Bearer  ${token}` }, /wrong/],
  ];
  for (const [what, headers, message] of refused) {
    const a = await get(headers);
    assert.equal(a.status, 401, `${what}: ${a.status}`);
    assert.match(a.type, /application\/json/, `${what}: JSON`);
    const body = JSON.parse(a.text);
    assert.equal(body.error, "unauthorized", `${what}: error code`);
    assert.match(body.message, message, `${what}: message`);
  }
  // A changed token takes effect at once; the old one is refused.
  const old = token;
  token = "rotated-token";
  assert.equal((await get(authHeader(old))).status, 401, "old token after rotation");
  assert.equal((await get(authHeader(token))).status, 200, "new token after rotation");
});

Deno.test("authHeader and newToken", () => {
  assert.deepEqual(authHeader("abc"), { Authorization: "Bearer abc" });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const t = newToken();
    assert.match(t, /^[0-9a-f]{32}$/, `newToken() = ${t}`);
    assert.ok(!seen.has(t), "newToken repeated a token");
    seen.add(t);
    assert.equal(tokensEqual(t, t), true);
  }
});

Deno.test("storedToken keeps a generated token in the data directory and reuses it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refsync-token-" });
  try {
    const first = await storedToken(`${dir}/dest`);
    assert.match(first, /^[0-9a-f]{32}$/);
    assert.equal(await storedToken(`${dir}/dest`), first, "a restart must keep the token");
    assert.equal((await Deno.stat(`${dir}/dest/pair-token`)).mode! & 0o077, 0, "owner-only file");
    assert.notEqual(await storedToken(`${dir}/other`), first);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

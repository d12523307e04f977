/**
 * Tokens (src/protocol/auth/mod.ts): `tokensEqual` is exact string equality,
 * the helpers produce what the other side expects, a generated token is kept,
 * and `isLoopbackHost` tells which listen addresses only this machine reaches.
 * (The HTTP checks are tested in tests/http/auth.test.ts.)
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  authHeader,
  isLoopbackHost,
  newToken,
  storedToken,
  tokensEqual,
} from "../../../src/protocol/auth/mod.ts";
import { Prng, seeded } from "../../support/prng.ts";

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

Deno.test(
  "tokensEqual: agrees with === on random pairs",
  seeded(0xa07b_1001, (seed) => {
    const rng = new Prng(seed);
    const alphabet = ["a", "b", "0", "é", "🙂", "\0", " ", "\ud800", "\udc00", "\ufffd"];
    for (let i = 0; i < 3000; i++) {
      const word = () => Array.from({ length: rng.int(6) }, () => rng.pick(alphabet)).join("");
      const a = word();
      const b = rng.chance(0.3) ? a : word();
      assert.equal(tokensEqual(a, b), a === b, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  }),
);

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

Deno.test("isLoopbackHost: loopback addresses only; wildcards, LAN addresses and names are not", () => {
  const loopback = [
    "127.0.0.1",
    "127.1.2.3",
    "127.255.255.255",
    "localhost",
    "LOCALHOST",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "::ffff:127.0.0.1",
  ];
  for (const h of loopback) assert.equal(isLoopbackHost(h), true, h);
  const open = [
    "0.0.0.0",
    "::",
    "[::]",
    "192.168.1.10",
    "10.0.0.1",
    "128.0.0.1",
    "127.0.0.256",
    "1127.0.0.1",
    "127.0.0",
    "example.com",
    "localhost.example.com",
    "::ffff:10.0.0.1",
    "",
  ];
  for (const h of open) assert.equal(isLoopbackHost(h), false, JSON.stringify(h));
});

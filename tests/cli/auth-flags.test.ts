/**
 * The authentication flags of the CLI (src/cli/args.ts): `--client-token`
 * (or REFSYNC_CLIENT_TOKEN) for the object API, required off loopback unless
 * `--insecure-open`; `promote` refusing to run without a pair token.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  parseDestArgs,
  parsePromoteArgs,
  parseSourceArgs,
  UsageError,
} from "../../src/cli/args.ts";

/** Runs `fn` with environment variables set (and restores them). */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const set = (k: string, v: string | undefined) =>
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  for (const [k, v] of Object.entries(vars)) set(k, v);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) set(k, v);
  }
}

const NO_ENV = { REFSYNC_TOKEN: undefined, REFSYNC_CLIENT_TOKEN: undefined };

Deno.test("--client-token: off loopback an appliance needs one, or --insecure-open", () => {
  withEnv(NO_ENV, () => {
    for (const parse of [parseSourceArgs, parseDestArgs]) {
      for (const host of ["0.0.0.0", "::", "192.168.1.10", "example.com"]) {
        assert.throws(
          () => parse(["--host", host]),
          (e: unknown) =>
            e instanceof UsageError && e.message.includes(`--host ${host} is not a loopback`) &&
            e.message.includes("--client-token") && e.message.includes("--insecure-open"),
          `${parse.name} --host ${host}`,
        );
        assert.equal(parse(["--host", host, "--client-token", "c"]).clientToken, "c");
        assert.equal(parse(["--host", host, "--insecure-open"]).clientToken, null);
        assert.equal(
          withEnv({ REFSYNC_CLIENT_TOKEN: "env-c" }, () => parse(["--host", host]).clientToken),
          "env-c",
        );
      }
      // On loopback the object API may stay open; a given client token is required there too.
      assert.equal(parse([]).clientToken, null);
      assert.equal(parse(["--host", "::1"]).clientToken, null);
      assert.equal(parse(["--client-token", "c"]).clientToken, "c", "client token on loopback");
      assert.equal(
        withEnv({ REFSYNC_CLIENT_TOKEN: "env" }, () => parse(["--client-token", "flag"]))
          .clientToken,
        "flag",
        "the flag wins over the environment",
      );
      assert.throws(() => parse(["--client-token", ""]), UsageError, "an empty client token");
      assert.throws(() => parse(["--token", ""]), UsageError, "an empty pair token");
    }
  });
});

Deno.test("promote: needs --url and the pair token (flag or REFSYNC_TOKEN)", () => {
  withEnv(NO_ENV, () => {
    const url = "http://127.0.0.1:8081";
    assert.deepEqual(parsePromoteArgs(["--url", url, "--token", "t"]), { url, token: "t" });
    assert.deepEqual(
      withEnv({ REFSYNC_TOKEN: "env-t" }, () => parsePromoteArgs(["--url", url])),
      { url, token: "env-t" },
    );
    const refused: Array<[string[], RegExp]> = [
      [["--url", url], /needs the pair token/],
      [["--url", url, "--token", ""], /empty/],
      [["--token", "t"], /needs --url/],
      [["--url", "127.0.0.1:8081", "--token", "t"], /not an http/],
      [["--url", url, "--token", "t", "--port", "1"], /port/],
      [["--url", url, "--token", "t", "extra"], /extra/],
    ];
    for (const [args, message] of refused) {
      assert.throws(
        () => parsePromoteArgs(args),
        (e: unknown) => e instanceof UsageError && message.test(e.message),
        args.join(" "),
      );
    }
  });
});

Deno.test("refsync dest --rejoin: the failback flag, off by default; a source has none", () => {
  withEnv(NO_ENV, () => {
    assert.equal(parseDestArgs(["--data", "d"]).rejoin, false);
    assert.equal(parseDestArgs(["--data", "d", "--rejoin"]).rejoin, true);
    assert.throws(() => parseDestArgs(["--rejoin=yes"]), UsageError);
    assert.throws(() => parseSourceArgs(["--rejoin"]), UsageError);
  });
});

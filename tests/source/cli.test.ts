/**
 * The command line, as a user meets it: every bad option exits 2 with the
 * usage text on stderr, `--help` lists every command's flags with their
 * defaults, and a port that is taken is named.
 *
 * @module
 */
import assert from "node:assert/strict";
import { runCli, spawnSource, withTempDir } from "../support/appliance.ts";

/** Command lines that are mistakes, and a word the error must name. */
const BAD: Array<{ args: string[]; names: string }> = [
  { args: ["pair", "--bogusflag"], names: "--bogusflag" },
  { args: ["pair", "--port", "1"], names: "--port" },
  { args: ["pair", "--source-port", "x"], names: "--source-port" },
  { args: ["source", "--bogusflag"], names: "--bogusflag" },
  { args: ["source", "stray"], names: "stray" },
  { args: ["source", "--log-level", "loud"], names: "--log-level: 'loud'" },
  { args: ["dest", "--port", "-1"], names: "--port" },
  { args: ["dest", "--cp-dirty-bytes", "lots"], names: "--cp-dirty-bytes" },
  { args: ["verify"], names: "verify needs --data" },
  { args: ["verify", "--data", "x", "--bogusflag"], names: "--bogusflag" },
  { args: ["promote", "--bogusflag"], names: "--bogusflag" },
  { args: ["frobnicate"], names: "unknown command 'frobnicate'" },
  { args: [], names: "give a command" },
];

Deno.test("cli: every bad option exits 2 with the usage text", async () => {
  // Each is refused while its flags are parsed, before anything is opened or created.
  for (const { args, names } of BAD) {
    const run = await runCli(args);
    const what = `refsync ${args.join(" ")}`;
    assert.equal(run.code, 2, `${what}: exit ${run.code}\n${run.stderr}`);
    assert.ok(run.stderr.includes(names), `${what}: stderr does not name ${names}:\n${run.stderr}`);
    assert.ok(run.stderr.includes("\nusage:\n"), `${what}: no usage text:\n${run.stderr}`);
    assert.equal(run.stdout, "", `${what}: printed on stdout`);
  }
});

Deno.test("cli: --help lists the flags of every command with their defaults", async () => {
  const run = await runCli(["--help"]);
  assert.equal(run.code, 0, run.stderr);
  for (
    const text of [
      "refsync pair",
      "both appliances in one process",
      "--source-port P          pair: the source's port (default 8080)",
      "--dest-port P            pair: the destination's port (default 8081)",
      "--host H                 address to listen on (default 127.0.0.1)",
      "(default 5000)",
      "--log-level L            debug, info, warn, error: JSON log lines on stderr (default info)",
      "--cp-interval MS         CP timer, 0 for none (default 1000)",
    ]
  ) {
    assert.ok(run.stdout.includes(text), `--help lacks ${JSON.stringify(text)}:\n${run.stdout}`);
  }
  const pairHelp = await runCli(["pair", "--help"]);
  assert.equal(pairHelp.code, 0);
  assert.equal(pairHelp.stdout, run.stdout);
});

Deno.test("cli: a port in use is named with its address", async () => {
  await withTempDir("refsync-cli-port-", async (dir) => {
    const first = await spawnSource(`${dir}/a`, ["--cp-interval", "0"]);
    try {
      const run = await runCli([
        "source",
        "--port",
        String(first.port),
        "--data",
        `${dir}/b`,
        "--cp-interval",
        "0",
      ]);
      assert.equal(run.code, 1, run.stderr);
      assert.ok(
        run.stderr.includes(`cannot listen on 127.0.0.1:${first.port}: address already in use`),
        run.stderr,
      );
      // It let go of its data directory on the way out: the directory starts at once.
      const b = await spawnSource(`${dir}/b`, ["--cp-interval", "0"]);
      await b.stop();
      const pair = await runCli([
        "pair",
        "--data",
        `${dir}/pair`,
        "--source-port",
        String(first.port),
        "--dest-port",
        "0",
      ]);
      assert.equal(pair.code, 1, pair.stderr);
      assert.ok(pair.stderr.includes(`127.0.0.1:${first.port}`), pair.stderr);
    } finally {
      await first.stop();
    }
  });
});

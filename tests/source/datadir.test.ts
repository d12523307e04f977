/**
 * The data directory, from outside, with real processes: one process at a
 * time (a second exits at once naming the holder, the first serves on and
 * loses nothing), its role is kept (a directory started in the other role is
 * refused with the command to use), `verify` refuses a directory in use, and a
 * crash during the very first volume creation leaves a directory that starts.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  adminAuth,
  ApplianceStartError,
  runCli,
  spawnAppliance,
  spawnSource,
  withTempDir,
} from "../support/appliance.ts";
import { objectUrl, request } from "../support/http.ts";
import { withDeadline } from "../support/timeout.ts";

const QUIET = ["--cp-interval", "0"];

/** Starts an appliance that must refuse to start; returns how it ended. */
async function refusedStart(
  role: "source" | "dest",
  dataDir: string,
  args: string[] = [],
): Promise<ApplianceStartError> {
  try {
    const p = await spawnAppliance({ role, dataDir, args: [...QUIET, ...args] });
    await p.kill();
  } catch (e) {
    assert.ok(e instanceof ApplianceStartError, String(e));
    // It exited by itself: a start that waited on the lock would be killed at the timeout.
    assert.equal(e.status.signal, null, `it did not exit by itself:\n${e.message}`);
    return e;
  }
  assert.fail(`${role} started on ${dataDir}`);
}

async function put(base: string, key: string, body: string): Promise<void> {
  const a = await withDeadline(
    10_000,
    (signal) => request(objectUrl(base, key), { method: "PUT", body, signal }),
  );
  assert.equal(a.status, 201, `PUT ${key}: ${a.status} ${a.text}`);
}

/** The body of object `key`, asserting 200. */
async function read(base: string, key: string): Promise<string> {
  const a = await withDeadline(10_000, (signal) => request(objectUrl(base, key), { signal }));
  assert.equal(a.status, 200, `GET ${key}: ${a.status} ${a.text}`);
  return a.text;
}

Deno.test("a second process on a data directory exits at once naming the holder; the first serves on", async () => {
  await withTempDir("refsync-lock-", async (dir) => {
    let first = await spawnSource(dir, QUIET);
    try {
      for (let i = 0; i < 20; i++) await put(first.url, `one${i}`, `first ${i}`);
      const second = await refusedStart("source", dir);
      assert.equal(second.status.code, 1);
      assert.match(
        second.stderr,
        new RegExp(`${dir} is in use by another process \\(pid ${first.pid}`),
      );
      // The same for a destination (the lock comes before the role) and for verify.
      const dest = await refusedStart("dest", dir, ["--token", "t"]);
      assert.match(dest.stderr, new RegExp(`pid ${first.pid}`));
      const verify = await runCli(["verify", "--data", dir]);
      assert.equal(verify.code, 1, verify.stderr);
      assert.match(
        verify.stderr,
        new RegExp(`${dir} is in use by another process \\(pid ${first.pid}`),
      );

      // The first goes on: its objects read back, it takes writes, CPs commit.
      for (let i = 0; i < 20; i++) assert.equal(await read(first.url, `one${i}`), `first ${i}`);
      await put(first.url, "after", "still serving");
      const cp = await withDeadline(
        10_000,
        (signal) =>
          request(`${first.url}/v1/admin/cp`, {
            method: "POST",
            headers: adminAuth(first),
            signal,
          }),
      );
      assert.equal(cp.status, 200, cp.text);
      const stopped = await first.stop();
      assert.equal(stopped.status.code, 0);

      // Nothing acknowledged is lost, and the directory checks clean once free.
      const verified = await runCli(["verify", "--data", dir]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
      assert.equal(JSON.parse(verified.stdout).objects, 21);
      first = await spawnSource(dir, QUIET);
      for (let i = 0; i < 20; i++) {
        assert.equal(await read(first.url, `one${i}`), `first ${i}`);
      }
      assert.equal(await read(first.url, "after"), "still serving");
    } finally {
      await first.kill();
    }
  });
});

Deno.test("a data directory keeps its role: started as the other role it is refused with the command to use", async () => {
  await withTempDir("refsync-role-", async (dir) => {
    const src = await spawnSource(`${dir}/source`, QUIET);
    await put(src.url, "a", "source data");
    await src.stop();
    const asDest = await refusedStart("dest", `${dir}/source`, ["--token", "t"]);
    assert.equal(asDest.status.code, 1);
    assert.match(
      asDest.stderr,
      new RegExp(
        `${dir}/source holds a source's data; start it with \`refsync source --data ${dir}/source\``,
      ),
    );

    const dst = await spawnAppliance({
      role: "dest",
      dataDir: `${dir}/dest`,
      args: ["--token", "t"],
    });
    await dst.stop();
    const asSource = await refusedStart("source", `${dir}/dest`);
    assert.equal(asSource.status.code, 1);
    assert.match(
      asSource.stderr,
      new RegExp(
        `${dir}/dest holds a destination's data; start it with \`refsync dest --data ${dir}/dest\``,
      ),
    );
    // The refusal changed nothing: each starts in its own role with its data.
    const again = await spawnSource(`${dir}/source`, QUIET);
    try {
      assert.equal(await read(again.url, "a"), "source data");
    } finally {
      await again.stop();
    }
  });
});

/** A shell with `ulimit`, or null. */
const BASH = ["/bin/bash", "/usr/bin/bash"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}) ?? null;

Deno.test({
  name: "a crash during the first volume creation leaves a directory that starts",
  ignore: BASH === null,
}, async () => {
  await withTempDir("refsync-create-", async (dir) => {
    // Load (and cache) every module first, so the crash below hits the volume, not Deno's cache.
    const help = await runCli(["source", "--help"]);
    assert.equal(help.code, 0);
    // A file size limit of 1 KiB kills the process (SIGXFSZ) in the middle of writing the
    // first superblock: a crash at the worst moment of the volume's creation.
    const crashed = await new Deno.Command(BASH!, {
      args: [
        "-c",
        'ulimit -f 1; exec "$0" "$@"',
        Deno.execPath(),
        "run",
        "-A",
        "src/main.ts",
        "source",
        "--port",
        "0",
        "--data",
        `${dir}/data`,
      ],
      cwd: new URL("../../", import.meta.url).pathname,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(crashed.signal, "SIGXFSZ", `exit ${crashed.code}`);
    const src = await spawnSource(`${dir}/data`, QUIET);
    try {
      await put(src.url, "a", "after the crash");
      assert.equal(await read(src.url, "a"), "after the crash");
    } finally {
      await src.stop();
    }
  });
});

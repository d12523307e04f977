import assert from "node:assert/strict";
import { BenchUsageError, parseBenchArgs, parseBytes, PRESETS } from "../../bench/lib/args.ts";

const NAMES = ["aligned", "unaligned", "duplicate", "small", "mixed", "edited", "realfiles"];

Deno.test("parseBenchArgs: defaults, quick preset, filters in report order", () => {
  const d = parseBenchArgs([], NAMES);
  assert.equal(d.seconds, PRESETS.full.seconds);
  assert.deepEqual(d.workloads, NAMES);
  assert.deepEqual(d.modes, ["refs", "full", "local", "naive"]);
  assert.equal(d.corpus, null);
  assert.equal(d.corpusBytes, null);
  assert.equal(d.concurrency, null);
  assert.equal(d.dataDir, null);
  assert.equal(d.resync, true);
  assert.equal(parseBenchArgs(["--no-resync"], NAMES).resync, false);
  const q = parseBenchArgs(
    ["--quick", "--workloads", "small,aligned", "--modes", "local,refs", "--concurrency", "4"],
    NAMES,
  );
  assert.equal(q.seconds, PRESETS.quick.seconds);
  assert.equal(q.bytes, PRESETS.quick.bytes);
  assert.deepEqual(q.workloads, ["aligned", "small"]);
  assert.deepEqual(q.modes, ["refs", "local"]);
  assert.equal(q.concurrency, 4);
  const o = parseBenchArgs(
    ["--seconds", "2.5", "--bytes", "1GiB", "--data-dir", "/dev/shm/b"],
    NAMES,
  );
  assert.equal(o.seconds, 2.5);
  assert.equal(o.bytes, 2 ** 30);
  assert.equal(o.dataDir, "/dev/shm/b");
});

Deno.test("parseBenchArgs: naive mode, mixed and realfiles workloads, the corpus flags", () => {
  const o = parseBenchArgs([
    "--quick",
    "--workloads",
    "mixed,duplicate,aligned",
    "--modes",
    "naive,refs",
  ], NAMES);
  assert.deepEqual(o.workloads, ["aligned", "duplicate", "mixed"]);
  assert.deepEqual(o.modes, ["refs", "naive"]);
  const r = parseBenchArgs(
    ["--workloads", "realfiles", "--corpus", "/a, /b/c", "--corpus-bytes", "64MiB"],
    NAMES,
  );
  assert.deepEqual(r.workloads, ["realfiles"]);
  assert.deepEqual(r.corpus, ["/a", "/b/c"]);
  assert.equal(r.corpusBytes, 64 * 2 ** 20);
});

Deno.test("parseBenchArgs: clear errors", () => {
  const bad = [
    ["--modes", "refs,fast"],
    ["--workloads", "huge"],
    ["--concurrency", "0"],
    ["--concurrency", "1.5"],
    ["--seconds", "-1"],
    ["--bytes", "lots"],
    ["--cp-interval", "1s"],
    ["--nope"],
    ["--modes", ","],
    ["--corpus", ","],
    ["--corpus-bytes", "0"],
    ["--corpus-bytes", "much"],
  ];
  for (const args of bad) {
    assert.throws(() => parseBenchArgs(args, NAMES), BenchUsageError, args.join(" "));
  }
});

Deno.test("parseBytes", () => {
  assert.equal(parseBytes("4096", "x"), 4096);
  assert.equal(parseBytes("512MiB", "x"), 512 * 2 ** 20);
  assert.equal(parseBytes("1.5G", "x"), 1.5 * 2 ** 30);
  assert.equal(parseBytes("64k", "x"), 65536);
  assert.throws(() => parseBytes("0", "x"), BenchUsageError);
});

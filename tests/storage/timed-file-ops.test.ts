/** `timedFileOps`: every fdatasync, async or sync, failed or not, is timed; the rest passes through. */
import assert from "node:assert/strict";
import type { FileOps } from "../../src/storage/fs/file-ops.ts";
import { timedFileOps } from "../../src/storage/fs/timed-file-ops.ts";

Deno.test("timedFileOps reports the seconds of each fdatasync and forwards every call", async () => {
  const calls: string[] = [];
  let fail = false;
  const inner: FileOps = {
    writeSync: (_fd, _buf, _offset, length) => (calls.push("write"), length),
    readSync: () => (calls.push("read"), 0),
    ftruncateSync: () => void calls.push("ftruncate"),
    fdatasync: async () => {
      calls.push("fdatasync");
      await new Promise((r) => setTimeout(r, 30));
      if (fail) throw new Error("EIO");
    },
    fdatasyncSync: () => void calls.push("fdatasyncSync"),
    availableBytes: () => (calls.push("available"), 42),
  };
  const seen: number[] = [];
  const ops = timedFileOps(inner, (s) => seen.push(s));
  assert.equal(ops.writeSync(3, new Uint8Array(8), 0, 8, 0), 8);
  assert.equal(ops.readSync(3, new Uint8Array(8), 0, 8, 0), 0);
  ops.ftruncateSync(3, 0);
  assert.equal(ops.availableBytes("."), 42);
  assert.equal(seen.length, 0, "only fdatasyncs are timed");
  await ops.fdatasync(3);
  ops.fdatasyncSync(3);
  fail = true;
  await assert.rejects(ops.fdatasync(3), /EIO/);
  assert.deepEqual(calls, [
    "write",
    "read",
    "ftruncate",
    "available",
    "fdatasync",
    "fdatasyncSync",
    "fdatasync",
  ]);
  assert.equal(seen.length, 3);
  assert.ok(seen[0] >= 0.025 && seen[0] < 10, `${seen[0]} s for a 30 ms sync`);
  assert.ok(seen[2] >= 0.025, "a failed sync is timed too");
});

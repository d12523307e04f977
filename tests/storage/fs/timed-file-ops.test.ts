/** `timedFileOps`: every fdatasync, async or sync, failed or not, is timed; the rest passes through. */
import assert from "node:assert/strict";
import { NodeFileSystem } from "../../../src/storage/fs/file-ops.ts";
import { timedFileOps } from "../../../src/storage/fs/timed-file-ops.ts";

Deno.test("timedFileOps reports the seconds of each fdatasync and forwards every call", async () => {
  const calls: string[] = [];
  let fail = false;
  // A disk whose operations are recorded (and whose fdatasync can fail).
  class Spy extends NodeFileSystem {
    override writeSync(_fd: number, _buf: Uint8Array, _offset: number, length: number): number {
      calls.push("write");
      return length;
    }
    override readSync(): number {
      calls.push("read");
      return 0;
    }
    override ftruncateSync(): void {
      calls.push("ftruncate");
    }
    override async fdatasync(): Promise<void> {
      calls.push("fdatasync");
      await new Promise((r) => setTimeout(r, 30));
      if (fail) throw new Error("EIO");
    }
    override fdatasyncSync(): void {
      calls.push("fdatasyncSync");
    }
    override availableBytes(): number {
      calls.push("available");
      return 42;
    }
  }
  const inner = new Spy();
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

/**
 * The file-system seam: one contract run against node:fs and the in-memory
 * disk (what the storage modules rely on), then the in-memory disk's crash
 * semantics (what survives a crash, and what does not).
 */
import assert from "node:assert/strict";
import { type FileSystem, hasCode, nodeFileOps } from "../../../src/storage/fs/file-ops.ts";
import { MemoryFileSystem } from "../../../src/storage/fs/memory.ts";
import { Prng } from "../../../src/runtime/random.ts";
import { seeded } from "../../support/prng.ts";

const bytes = (...v: number[]) => new Uint8Array(v);

function contract(
  name: string,
  make: () => Promise<{ fs: FileSystem; dir: string; done(): Promise<void> }>,
) {
  Deno.test(`file system (${name}): open, write, read, size, truncate, rename, unlink, readdir`, async () => {
    const { fs, dir, done } = await make();
    try {
      fs.mkdirSync(`${dir}/a/b`, { recursive: true });
      assert.ok(fs.existsSync(`${dir}/a/b`));
      assert.throws(() => fs.openSync(`${dir}/a/missing`, "r+"), (e) => hasCode(e, "ENOENT"));
      const fd = fs.openSync(`${dir}/a/f`, "wx+");
      assert.throws(() => fs.openSync(`${dir}/a/f`, "wx+"), (e) => hasCode(e, "EEXIST"));
      assert.equal(fs.writeSync(fd, bytes(1, 2, 3, 4), 1, 3, 2), 3);
      assert.equal(fs.sizeSync(fd), 5);
      const out = new Uint8Array(8);
      assert.equal(fs.readSync(fd, out, 0, 8, 0), 5);
      assert.deepEqual(out.subarray(0, 5), bytes(0, 0, 2, 3, 4));
      assert.equal(fs.readSync(fd, out, 0, 8, 5), 0, "a read at the end reads nothing");
      fs.ftruncateSync(fd, 3);
      assert.equal(fs.sizeSync(fd), 3);
      await fs.fdatasync(fd);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      assert.deepEqual(fs.readFileSync(`${dir}/a/f`), bytes(0, 0, 2));
      fs.renameSync(`${dir}/a/f`, `${dir}/a/g`);
      fs.fsyncDirSync(`${dir}/a`);
      assert.deepEqual(fs.readdirSync(`${dir}/a`).sort(), ["b", "g"]);
      const w = fs.openSync(`${dir}/a/g`, "w");
      assert.equal(fs.sizeSync(w), 0, "w empties the file");
      fs.closeSync(w);
      fs.unlinkSync(`${dir}/a/g`);
      assert.ok(!fs.existsSync(`${dir}/a/g`));
      assert.throws(() => fs.unlinkSync(`${dir}/a/g`), (e) => hasCode(e, "ENOENT"));
    } finally {
      await done();
    }
  });

  Deno.test(`file system (${name}): a lock is exclusive until released`, async () => {
    const { fs, dir, done } = await make();
    try {
      const lock = fs.tryLockSync(`${dir}/lock`);
      assert.ok(lock);
      lock.write(new TextEncoder().encode("42\n"));
      assert.equal(new TextDecoder().decode(fs.readFileSync(`${dir}/lock`)), "42\n");
      if (fs instanceof MemoryFileSystem) assert.equal(fs.tryLockSync(`${dir}/lock`), null);
      lock.release();
      const again = fs.tryLockSync(`${dir}/lock`);
      assert.ok(again, "released: it can be taken again");
      again.release();
    } finally {
      await done();
    }
  });
}

contract("node:fs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "refsync-fs-" });
  return { fs: nodeFileOps, dir, done: () => Deno.remove(dir, { recursive: true }) };
});
contract("memory", () => {
  const fs = new MemoryFileSystem();
  fs.mkdirSync("sim");
  return Promise.resolve({ fs, dir: "sim", done: () => Promise.resolve() });
});

Deno.test("memory file system: a crash keeps synced bytes and entries, loses the rest", async () => {
  const fs = new MemoryFileSystem();
  fs.mkdirSync("d");
  fs.fsyncDirSync(".");
  const fd = fs.openSync("d/f", "wx+");
  fs.writeSync(fd, bytes(1, 2), 0, 2, 0);
  await fs.fdatasync(fd);
  fs.writeSync(fd, bytes(3, 4), 0, 2, 2); // never synced
  fs.crash();
  assert.ok(!fs.existsSync("d/f"), "the entry of d/f was never fsynced");
  assert.throws(
    () => fs.sizeSync(fd),
    (e) => hasCode(e, "EBADF"),
    "descriptors die with the process",
  );

  const g = fs.openSync("d/g", "wx+");
  fs.writeSync(g, bytes(1, 2), 0, 2, 0);
  fs.fdatasyncSync(g);
  fs.fsyncDirSync("d");
  fs.writeSync(g, bytes(3, 4), 0, 2, 2);
  fs.renameSync("d/g", "d/h"); // never fsynced
  fs.crash();
  assert.deepEqual(fs.readFileSync("d/g"), bytes(1, 2), "synced bytes under the synced name");
  assert.ok(!fs.existsSync("d/h"));
});

Deno.test("memory file system: an fdatasync of a crashed process never completes", async () => {
  const pending: Array<() => void> = [];
  const fs = new MemoryFileSystem({ schedule: (done) => pending.push(done) });
  const fd = fs.openSync("f", "wx+");
  fs.fsyncDirSync(".");
  fs.writeSync(fd, bytes(9), 0, 1, 0);
  let settled = false;
  fs.fdatasync(fd).then(() => settled = true);
  fs.crash();
  for (const done of pending) done();
  await Promise.resolve();
  assert.equal(settled, false);
  assert.equal(fs.readFileSync("f").length, 0, "the write it was to make durable is lost");
});

Deno.test(
  "memory file system: crash faults keep, tear and flip unsynced writes",
  seeded(11, (seed) => {
    const rng = new Prng(seed);
    let torn = 0;
    let flipped = 0;
    for (let trial = 0; trial < 200; trial++) {
      const fs = new MemoryFileSystem();
      const fd = fs.openSync("f", "wx+");
      fs.fsyncDirSync(".");
      fs.writeSync(fd, new Uint8Array(100).fill(7), 0, 100, 0);
      fs.crash({ float: () => rng.float(), keepWrite: 1, tear: 0.5, flipBit: 0.5 });
      const got = fs.readFileSync("f");
      assert.ok(got.length <= 100);
      if (got.length < 100) torn++;
      if (got.some((b) => b !== 7)) flipped++;
    }
    assert.ok(torn > 50 && torn < 150, `torn ${torn} of 200`);
    assert.ok(flipped > 25 && flipped < 175, `flipped ${flipped} of 200`);
  }),
);

Deno.test("memory file system: a bit flipped at rest lasts a crash only on the medium", () => {
  const fs = new MemoryFileSystem();
  const fd = fs.openSync("f", "wx+");
  fs.fsyncDirSync(".");
  fs.writeSync(fd, bytes(0, 0, 0), 0, 3, 0);
  fs.fdatasyncSync(fd);
  fs.flipBit("f", 1, true); // byte 0, bit 1: the medium
  fs.flipBit("f", 8 + 7, false); // byte 1, bit 7: the cached copy only
  assert.deepEqual(fs.readFileSync("f"), bytes(2, 128, 0));
  fs.writeSync(fd, bytes(5), 0, 1, 1); // a write over the flipped byte replaces it
  assert.deepEqual(fs.readFileSync("f"), bytes(2, 5, 0));
  fs.crash();
  assert.deepEqual(
    fs.readFileSync("f"),
    bytes(2, 0, 0),
    "the cache is gone, the medium's flip stays",
  );
  assert.throws(() => fs.flipBit("f", 24, true), /past the end/);
});

Deno.test("memory file system: a write past the capacity is cut short, then ENOSPC", () => {
  const fs = new MemoryFileSystem({ capacity: 10 });
  const fd = fs.openSync("f", "wx+");
  assert.equal(fs.writeSync(fd, new Uint8Array(16), 0, 16, 0), 10);
  assert.equal(fs.availableBytes("."), 0);
  assert.throws(() => fs.writeSync(fd, new Uint8Array(1), 0, 1, 10), (e) => hasCode(e, "ENOSPC"));
  fs.ftruncateSync(fd, 4);
  assert.equal(fs.availableBytes("."), 6);
});

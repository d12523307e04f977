import assert from "node:assert/strict";
import { fileSystemOf, mountOf } from "../../bench/lib/fs.ts";

const MOUNTS = [
  "/dev/vda / ext4 rw,relatime 0 0",
  "tmpfs /dev/shm tmpfs rw,nosuid 0 0",
  "/dev/vdb /data xfs rw 0 0",
  "/dev/vdc /data/fast btrfs rw 0 0",
  "/dev/vdd /mnt/with\\040space ext4 rw 0 0",
  "",
].join("\n");

Deno.test("mountOf: the longest mount point containing the path", () => {
  assert.equal(mountOf("/tmp/x", MOUNTS)?.type, "ext4");
  assert.equal(mountOf("/dev/shm/refsync/run", MOUNTS)?.type, "tmpfs");
  assert.equal(mountOf("/data/fast/a", MOUNTS)?.type, "btrfs");
  assert.equal(mountOf("/data/fast", MOUNTS)?.type, "btrfs");
  // A sibling with a common prefix is not inside.
  assert.equal(mountOf("/data/faster", MOUNTS)?.type, "xfs");
  assert.equal(mountOf("/mnt/with space/x", MOUNTS)?.mountPoint, "/mnt/with space");
  assert.equal(mountOf("/x", ""), null);
  // A later mount on the same point wins (it is on top).
  assert.equal(mountOf("/data/x", MOUNTS + "\noverlay /data overlay rw 0 0")?.type, "overlay");
});

Deno.test("fileSystemOf: a real directory has a known type", () => {
  const fs = fileSystemOf(Deno.cwd());
  assert.notEqual(fs.type, "");
});

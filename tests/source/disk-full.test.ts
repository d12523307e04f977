/**
 * A full disk, with real processes: a pair whose source and destination each
 * keep their data on a 48 MiB tmpfs. Writes past the space get 507 JSON and
 * no process dies; after deleting half the objects a CP commits and writes
 * succeed again without a restart; every acknowledged object reads back with
 * its bytes and ETag, on both sides and after a restart of the source.
 *
 * Mounting needs root (CAP_SYS_ADMIN): elsewhere the test is skipped, with a
 * note when the mount itself is refused.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  adminCp,
  assertSameDigest,
  call,
  putRandomObject,
  spawnMirroredSource,
  spawnPair,
  stopAll,
  verifySides,
} from "../mirror/pair.ts";
import { Model } from "../support/model.ts";
import { withTempDir } from "../support/appliance.ts";
import { assertJsonError, objectUrl } from "../support/http.ts";

const CAN_MOUNT = Deno.build.os === "linux" && Deno.uid() === 0;
const MIB = 1 << 20;

/** Mounts a tmpfs of `size` at `dir`; false (with a note) when the kernel refuses. */
async function mountTmpfs(dir: string, size: string): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.success) return true;
  console.warn(`skipped: cannot mount a tmpfs: ${new TextDecoder().decode(out.stderr).trim()}`);
  return false;
}

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).output();
}

/** PUTs 1 MiB objects until one is refused (at most `max`); returns the keys acknowledged. */
async function fillUp(
  url: string,
  model: Model,
  prefix: string,
  seed: number,
  max: number,
): Promise<{ acked: string[]; refusal: { status: number; text: string } | null }> {
  const acked: string[] = [];
  for (let i = 0; i < max; i++) {
    const key = `${prefix}${String(i).padStart(3, "0")}`;
    const a = await putRandomObject(url, model, key, seed + i, MIB);
    if (a.status !== 201) return { acked, refusal: a };
    acked.push(key);
  }
  return { acked, refusal: null };
}

Deno.test({
  name: "a full disk: 507 JSON, no process dies, delete + CP frees space, nothing acked lost",
  ignore: !CAN_MOUNT,
  async fn() {
    await withTempDir("refsync-diskfull-", async (dir) => {
      const mounts = [`${dir}/source`, `${dir}/dest`];
      const mounted: string[] = [];
      let pair: Awaited<ReturnType<typeof spawnPair>> | null = null;
      let again: Awaited<ReturnType<typeof spawnMirroredSource>> | null = null;
      try {
        for (const m of mounts) {
          if (!(await mountTmpfs(m, "48m"))) return;
          mounted.push(m);
        }
        // Frequent CPs keep the log short, so the volume holds most of the disk.
        const args = ["--cp-interval", "200"];
        pair = await spawnPair(dir, { sourceArgs: args, destArgs: args });
        const { src, dst } = pair;
        const model = new Model();

        const first = await fillUp(src.url, model, "a", 1000, 60);
        assert.ok(first.refusal, "a 48 MiB disk took 60 MiB of objects");
        assert.equal(first.refusal.status, 507, `the write past the space: ${first.refusal.text}`);
        assert.equal(JSON.parse(first.refusal.text).error, "no_space");
        // Most of the disk was usable: 48 MiB less the 8 MiB reserve and a CP's worth of log.
        assert.ok(first.acked.length >= 20, `only ${first.acked.length} MiB fit on 48 MiB`);
        // The refusal is lasting, a proper JSON answer, and nothing refused is visible.
        const more = await call(objectUrl(src.url, "refused"), {
          method: "PUT",
          body: new Uint8Array(MIB),
          headers: { "Content-Type": "application/octet-stream" },
        });
        assert.equal(assertJsonError(more, 507, "a second write past the space").error, "no_space");
        assert.equal((await call(objectUrl(src.url, "refused"))).status, 404);
        const cp = await adminCp(src); // a CP still commits on the full disk
        assert.ok(cp.cp > 0);

        // Delete half; the CP after it frees their blocks and the log.
        for (const [i, key] of first.acked.entries()) {
          if (i % 2 !== 0) continue;
          const del = await call(objectUrl(src.url, key), { method: "DELETE" });
          assert.equal(del.status, 204, `DELETE ${key}: ${del.status} ${del.text}`);
          model.delete(key);
        }
        await adminCp(src);
        const second = await fillUp(src.url, model, "b", 2000, 60);
        const half = Math.floor(first.acked.length / 2);
        assert.ok(
          second.acked.length >= half - 2,
          `after deleting ${half} MiB only ${second.acked.length} MiB could be written again`,
        );
        assert.equal(second.refusal?.status, 507, "the disk fills up again");
        assert.equal(src.exited, null, "the source is alive");
        assert.equal(dst.exited, null, "the destination is alive");

        await adminCp(src);
        await assertSameDigest(src, dst, "after the disk filled twice");
        await verifySides(model, { source: src, dest: dst }, "full disk");

        // A restart loses nothing acknowledged.
        await src.stop();
        again = await spawnMirroredSource(`${dir}/source`, dst.url, pair.token, args);
        await verifySides(model, { source: again }, "after a restart of the source");
      } finally {
        await stopAll(again, pair?.src, pair?.dst);
        for (const m of mounted) await unmount(m);
      }
    });
  },
});

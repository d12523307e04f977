/**
 * A byte flipped in a data block of `volume.dat` (appliance stopped) is never
 * served as a good 200, on the destination and on the source (real processes):
 *
 * - a damaged block in the first read piece of an object: `500 {"error":"corrupt"}`
 *   before any body, logged at error (`store.corrupt_block`, block and key);
 * - a damaged block further into a big object: the headers may have gone, but the
 *   body is cut short (the stream errors): never the whole Content-Length;
 * - `refsync verify --data DIR` lists each damaged block with its key and exits 1;
 *   an undamaged directory verifies clean (exit 0).
 *
 * The blocks are found in `volume.dat` by their content (4096-byte aligned copies
 * of the object's bytes), not by parsing the volume's maps.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ApplianceProcess, runCli, withTempDir } from "../support/appliance.ts";
import { damageFileBlock as damage } from "../support/datadir.ts";
import { objectUrl } from "../support/http.ts";
import { Prng, seeded } from "../support/prng.ts";
import { withDeadline } from "../support/timeout.ts";
import { adminCp, call, logEvents, spawnDest, spawnMirroredSource, stopAll } from "./pair.ts";

const MiB = 1 << 20;
const SOURCE_ARGS = ["--cp-interval", "0", "--sync-timeout", "2000"];

interface VerifyOutput {
  ok: boolean;
  damaged: Array<{ block: number; key: string; kind: string }>;
  errors: string[];
}

async function verify(dataDir: string): Promise<{ code: number; report: VerifyOutput }> {
  const run = await runCli(["verify", "--data", dataDir], { timeoutMs: 60_000 });
  assert.equal(run.signal, null, `verify was killed: ${run.stderr}`);
  return { code: run.code, report: JSON.parse(run.stdout) as VerifyOutput };
}

/** GET whose damaged block is in the first piece: a 500 JSON `corrupt` answer, no bytes. */
async function assertCorrupt500(p: ApplianceProcess, key: string, block: number): Promise<void> {
  const a = await call(objectUrl(p.url, key));
  assert.equal(a.status, 500, `GET ${key} on ${p.dataDir}: ${a.status} ${a.text.slice(0, 200)}`);
  const body = JSON.parse(a.text);
  assert.equal(body.error, "corrupt");
  assert.match(body.message, new RegExp(`data block ${block} of '${key}'`));
  const line = logEvents(p, "store.corrupt_block").find((l) => l.key === key);
  assert.deepEqual(
    line && { level: line.level, block: line.block },
    { level: "error", block },
    `logged: ${p.stderr.slice(-2000)}`,
  );
}

/** GET whose damaged block is past the first piece: whatever the status, never the whole body. */
async function assertCutShort(p: ApplianceProcess, key: string, size: number): Promise<void> {
  const outcome = await withDeadline(30_000, async (signal) => {
    const res = await fetch(objectUrl(p.url, key), { signal });
    let got = 0;
    try {
      const reader = res.body!.getReader();
      for (let i = 0; i < 10_000; i++) {
        const { done, value } = await reader.read();
        if (done) break;
        got += value.length;
      }
      return { status: res.status, got, failed: false };
    } catch {
      return { status: res.status, got, failed: true };
    }
  });
  assert.ok(
    outcome.failed && outcome.got < size,
    `GET ${key}: ${JSON.stringify(outcome)} of ${size} bytes: the body must be cut short`,
  );
}

Deno.test(
  "corrupt block: never served as a good 200 on the destination or the source; verify names it",
  seeded(0xc0bb, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir("refsync-corrupt-", async (tmp) => {
      const token = "corrupt-" + crypto.randomUUID();
      const small = rng.bytes(20_000);
      const big = rng.bytes(4 * MiB);
      const intact = rng.bytes(64 * 1024);
      let dst: ApplianceProcess | null = null;
      let src: ApplianceProcess | null = null;
      try {
        dst = await spawnDest(`${tmp}/dest`, token);
        const port = dst.port;
        src = await spawnMirroredSource(`${tmp}/source`, dst.url, token, SOURCE_ARGS);
        for (const [key, bytes] of [["small", small], ["big", big], ["intact", intact]] as const) {
          const a = await call(objectUrl(src.url, key), { method: "PUT", body: bytes as BodyInit });
          assert.equal(a.status, 201, `PUT ${key}: ${a.text}`);
        }
        await adminCp(src);

        // The destination, stopped: damage it, verify it, serve from it.
        await dst.stop(10_000);
        const destDir = `${tmp}/dest`;
        const clean = await verify(destDir);
        assert.deepEqual([clean.code, clean.report.ok, clean.report.damaged], [0, true, []]);
        const smallBlock = damage(destDir, small, 3);
        const bigBlock = damage(destDir, big, 700); // past the first 1 MiB piece
        const damaged = await verify(destDir);
        assert.equal(damaged.code, 1);
        assert.equal(damaged.report.ok, false);
        assert.deepEqual(
          damaged.report.damaged.toSorted((a, b) => a.key.localeCompare(b.key)),
          [
            { block: bigBlock, key: "big", kind: "data" },
            { block: smallBlock, key: "small", kind: "data" },
          ],
        );
        dst = await spawnDest(destDir, token, [], port);
        await assertCorrupt500(dst, "small", smallBlock);
        await assertCutShort(dst, "big", big.length);
        const ok = await call(objectUrl(dst.url, "intact"));
        assert.equal(ok.status, 200);
        assert.deepEqual(ok.bytes, intact, "undamaged objects are served as ever");

        // The same on the source.
        await src.stop(10_000);
        const srcDir = `${tmp}/source`;
        assert.equal((await verify(srcDir)).code, 0, "the source's volume is intact");
        const srcBlock = damage(srcDir, small, 0);
        const srcVerify = await verify(srcDir);
        assert.equal(srcVerify.code, 1);
        assert.deepEqual(srcVerify.report.damaged, [
          { block: srcBlock, key: "small", kind: "data" },
        ]);
        src = await spawnMirroredSource(srcDir, dst.url, token, SOURCE_ARGS);
        await assertCorrupt500(src, "small", srcBlock);
        const range = await call(objectUrl(src.url, "small"), {
          headers: { Range: "bytes=5000-5099" },
        });
        assert.equal(range.status, 206, "a range clear of the damaged block is still served");
        assert.deepEqual(range.bytes, small.subarray(5000, 5100));
      } finally {
        await stopAll(src, dst);
      }
    });
  }),
);

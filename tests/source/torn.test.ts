/**
 * Torn and corrupt on-disk state, with a real source process: write, SIGKILL,
 * damage the data dir from outside, restart, and check that the damage is
 * detected and passed over and that no acknowledged write is lost.
 *
 * (a) the last record of the last log segment is cut short at several points;
 * (b) one bit of the last record is flipped (header fields, key, payload);
 * (c) the newest superblock slot (CP n in block n % 2 of volume.dat) is
 *     corrupted: the previous CP plus a replay of the log are used.
 *
 * Why losing the damaged last record is correct: a record is acknowledged
 * only after the fdatasync that covers it returns. A write torn by a power
 * cut was therefore never fsynced, hence never acknowledged; a bit flipped in
 * it is indistinguishable from such a tear. In these tests the record WAS
 * acknowledged (we need it written to damage it): we damage it by hand to
 * stand for the record the crash tore before its fsync. What the test
 * demands is what the real case needs: everything before the record is
 * intact, and the record is gone WHOLE (the object keeps its previous bytes,
 * never a mix), also for a multi-record transaction whose COMMIT is the
 * damaged record (its WRITE records are intact but must not be applied).
 *
 * A corrupt newest superblock stands for a crash during the superblock write
 * of CP n: CP n-1 is intact (CP n wrote only blocks free in CP n-1) and the
 * log still holds every record after CP n-1 (the log is dropped only after a
 * CP commits), so nothing acknowledged may be lost.
 *
 * @module
 */
import { firstDifference } from "../support/bytes.ts";
import { Model } from "../support/model.ts";
import assert from "node:assert/strict";
import {
  adminAuth,
  type ApplianceProcess,
  ApplianceStartError,
  copyDir,
  spawnSource,
  withTempDir,
} from "../support/appliance.ts";
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { HEADER_SIZE, Off, Op } from "../../src/protocol/log-frame/mod.ts";
import { etagHex, etagValue } from "../support/blake3.ts";
import {
  flipBit,
  type FrameInfo,
  lastFrame,
  overwrite,
  slotCp,
  truncateFile,
} from "../support/datadir.ts";
import { objectUrl, putObject, putRange, request, requestJson } from "../support/http.ts";
import { Prng, testSeed, withSeed } from "../support/prng.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
/** No timer CPs, no threshold CPs: the test decides when a CP happens. */
const QUIET = ["--cp-interval", "0", "--cp-dirty-bytes", "1GiB"];

/** True when the model holds `key` (a write to it replaces: 200, not 201). */
function existing(model: Model, key: string): boolean {
  return model.objects.has(key);
}

async function put(
  src: ApplianceProcess,
  model: Model,
  key: string,
  data: Uint8Array,
): Promise<number> {
  const a = await putObject(src.url, key, data);
  assert.equal(a.status, existing(model, key) ? 200 : 201, `PUT ${key}: ${JSON.stringify(a.json)}`);
  assert.equal(a.json.etag, etagHex(data), `PUT ${key}: etag`);
  model.put(key, data);
  return a.json.lsn;
}

async function range(
  src: ApplianceProcess,
  model: Model,
  key: string,
  offset: number,
  data: Uint8Array,
) {
  const a = await putRange(src.url, key, offset, data);
  assert.equal(
    a.status,
    existing(model, key) ? 200 : 201,
    `ranged PUT ${key}: ${JSON.stringify(a.json)}`,
  );
  model.write(key, offset, data);
  return a.json.lsn;
}

async function del(src: ApplianceProcess, model: Model, key: string): Promise<void> {
  const a = await request(objectUrl(src.url, key), { method: "DELETE" });
  assert.equal(a.status, 204, `DELETE ${key}: ${a.status} ${a.text}`);
  model.delete(key);
}

async function cp(src: ApplianceProcess): Promise<number> {
  const a = await requestJson<{ cp: number }>(`${src.url}/v1/admin/cp`, {
    method: "POST",
    headers: adminAuth(src),
  });
  assert.equal(a.status, 200, JSON.stringify(a.json));
  return a.json.cp;
}

/** Every key of `model` is as the model says (bytes, ETag), and the listing is exactly the model. */
async function verify(src: ApplianceProcess, model: Model, when: string): Promise<void> {
  for (const key of [...model.objects.keys(), ...model.deleted]) {
    const a = await request(objectUrl(src.url, key));
    const want = model.bytes(key);
    if (want === null) {
      assert.equal(
        a.status,
        404,
        `${when}: ${key} should be absent; GET gave ${a.status} (${a.bytes.length} bytes)`,
      );
      continue;
    }
    assert.equal(
      a.status,
      200,
      `${when}: ${key} should hold ${want.length} bytes; GET gave ${a.status} ${
        a.text.slice(0, 200)
      }`,
    );
    const diff = firstDifference(a.bytes, want);
    assert.equal(
      diff,
      -1,
      `${when}: ${key} holds ${a.bytes.length} bytes, want ${want.length}; first difference at ${diff}`,
    );
    assert.equal(etagValue(a.headers.get("ETag")), etagHex(want), `${when}: ETag of ${key}`);
  }
  const list = await requestJson<{ objects: Array<{ key: string; size: number }> }>(
    `${src.url}/v1/objects?limit=1000`,
  );
  const want = model.sortedKeys().map((k) => [k, model.bytes(k)!.length]).sort();
  assert.deepEqual(list.json.objects.map((o) => [o.key, o.size]).sort(), want, `${when}: listing`);
}

async function stats(
  src: ApplianceProcess,
): Promise<{ cp: { committed: number }; lsn: { last: number } }> {
  return (await requestJson<{ cp: { committed: number }; lsn: { last: number } }>(
    `${src.url}/v1/admin/stats`,
  )).json;
}

// ------------------------------------------------------------------ log damage

/** A data dir whose last log record is the write `victim` (the one to damage). */
interface LogFixture {
  /** What must survive when the last record is lost: everything but the victim write. */
  without: Model;
  /** The victim key and its acknowledged content before the victim write. */
  victim: string;
  lastLsn: number;
  frame: FrameInfo;
  segment: string;
}

/**
 * Writes a CP'd base and log-only writes (PUTs, a ranged write, a DELETE),
 * then the victim: a single-record PUT replacing `b/victim`, or (`txn`) a
 * 2.5 MiB PUT replacing it, which is three WRITE records and a COMMIT: then
 * the COMMIT is the last record. Kills the process (SIGKILL) after it.
 */
async function prepareLog(dir: string, rng: Prng, variant: "single" | "txn"): Promise<LogFixture> {
  const model = new Model();
  const src = await spawnSource(dir, QUIET);
  try {
    await put(src, model, "a/one", rng.bytes(100 * KiB + 3));
    await put(src, model, "a/multi", rng.bytes(2.5 * MiB + 11)); // a multi-record transaction
    await put(src, model, "a/empty", new Uint8Array(0));
    await put(src, model, "a/gone", rng.bytes(5000));
    await range(src, model, "a/ranged", 5000, rng.bytes(70_000)); // created with a hole
    assert.equal(await cp(src), 1);
    // Log only, after the CP:
    await put(src, model, "b/one", rng.bytes(50 * KiB));
    await put(src, model, "b/victim", rng.bytes(200 * KiB + 1));
    await range(src, model, "a/one", 1000, rng.bytes(3000));
    await range(src, model, "a/multi", MiB - 100, rng.bytes(1.2 * MiB)); // across records, multi-record
    await del(src, model, "a/gone");
    // The victim, last.
    const before = model.clone();
    const lastLsn = await put(
      src,
      model,
      "b/victim",
      rng.bytes(variant === "single" ? 300 * KiB + 1 : 2.5 * MiB + 7),
    );
    const s = await stats(src);
    assert.equal(s.lsn.last, lastLsn, "the victim is the last record");
    assert.equal(s.cp.committed, 1, "no CP after the first");
    await src.kill();
    const { path, frame, fileSize } = lastFrame(dir);
    assert.equal(frame.lsn, lastLsn, "the last frame on disk is the victim's last record");
    assert.equal(frame.key, "b/victim");
    assert.equal(frame.op, variant === "single" ? Op.WRITE : Op.COMMIT);
    assert.equal(frame.offset + frame.frameLength, fileSize, "the victim ends the segment");
    return { without: before, victim: "b/victim", lastLsn, frame, segment: path };
  } finally {
    await src.kill();
  }
}

/**
 * Restarts on a damaged copy and checks: everything acknowledged before the
 * victim is there, the victim is gone whole, the log's last LSN is the one
 * before it (the damage was detected and cut), and (with `continues`) the
 * log takes new writes after the cut that survive another crash.
 */
async function checkLogRecovery(
  dir: string,
  fx: LogFixture,
  when: string,
  continues: boolean,
  rng: Prng,
) {
  let src = await spawnSource(dir, QUIET);
  try {
    await verify(src, fx.without, when);
    const s = await stats(src);
    assert.equal(
      s.lsn.last,
      fx.lastLsn - 1,
      `${when}: the damaged record LSN ${fx.lastLsn} was cut from the log`,
    );
    assert.equal(s.cp.committed, 1, `${when}: CP 1 is the committed CP`);
    if (!continues) return;
    const model = fx.without.clone();
    const lsn = await put(src, model, "after/cut", rng.bytes(12_345));
    assert.equal(lsn, fx.lastLsn, `${when}: the next write takes the freed LSN`);
    await range(src, model, fx.victim, 10, rng.bytes(100));
    await src.kill();
    src = await spawnSource(dir, QUIET);
    await verify(src, model, `${when}, then writes, a crash and a restart`);
  } finally {
    await src.kill();
  }
}

/** One way to damage the last record: a cut (new file length) or a bit flip (offset in the frame). */
type LogDamage = { name: string; cut: (f: FrameInfo) => number } | {
  name: string;
  flip: (f: FrameInfo) => number;
};

const payloadAt = (f: FrameInfo) => f.offset + HEADER_SIZE + f.keyLength;

const CUTS: LogDamage[] = [
  { name: "the whole record missing (clean end)", cut: (f) => f.offset },
  { name: "1 byte of the record", cut: (f) => f.offset + 1 },
  { name: "magic and length only (8 bytes)", cut: (f) => f.offset + 8 },
  { name: "header minus 1 byte", cut: (f) => f.offset + HEADER_SIZE - 1 },
  { name: "header only", cut: (f) => f.offset + HEADER_SIZE },
  {
    name: "header and half the key",
    cut: (f) => f.offset + HEADER_SIZE + (f.keyLength >> 1),
  },
  { name: "header and key, no payload", cut: (f) => payloadAt(f) },
  { name: "half the payload", cut: (f) => payloadAt(f) + (f.payloadLength >> 1) },
  { name: "all but the last byte", cut: (f) => f.offset + f.frameLength - 1 },
];

const FLIPS: LogDamage[] = [
  { name: "magic", flip: (f) => f.offset + Off.magic },
  { name: "frame length", flip: (f) => f.offset + Off.frameLength + 1 },
  { name: "LSN", flip: (f) => f.offset + Off.lsn },
  { name: "op", flip: (f) => f.offset + Off.op },
  { name: "flags", flip: (f) => f.offset + Off.flags },
  { name: "txn", flip: (f) => f.offset + Off.txn },
  { name: "object offset / size", flip: (f) => f.offset + Off.offset },
  { name: "mtime", flip: (f) => f.offset + Off.mtime + 2 },
  { name: "payload digest", flip: (f) => f.offset + Off.payloadDigest + 5 },
  { name: "header checksum", flip: (f) => f.offset + Off.headerChecksum + 15 },
  { name: "key", flip: (f) => f.offset + HEADER_SIZE },
  { name: "first payload byte", flip: (f) => payloadAt(f) },
  { name: "middle payload byte", flip: (f) => payloadAt(f) + (f.payloadLength >> 1) },
  { name: "last payload byte", flip: (f) => f.offset + f.frameLength - 1 },
];

for (const variant of ["single", "txn"] as const) {
  Deno.test(`torn log: the last record (${variant === "single" ? "a one-record PUT" : "the COMMIT of a 4-record PUT"}) cut or bit-flipped is dropped whole, nothing before it is lost`, async () => {
    const seed = testSeed(variant === "single" ? 0x7042 : 0x7043);
    await withSeed(
      seed,
      `torn log ${variant}`,
      () =>
        withTempDir(`refsync-torn-${variant}-`, async (tmp) => {
          const rng = new Prng(seed);
          const pristine = `${tmp}/pristine`;
          const fx = await prepareLog(pristine, rng, variant);
          const damages = [...CUTS, ...FLIPS];
          const seenContinue = new Set<string>();
          for (let i = 0; i < damages.length; i++) {
            const d = damages[i];
            const work = `${tmp}/case-${i}`;
            await copyDir(pristine, work);
            const seg = fx.segment.replace(pristine, work);
            const kind = "cut" in d ? "cut" : "flip";
            if ("cut" in d) truncateFile(seg, d.cut(fx.frame));
            else flipBit(seg, d.flip(fx.frame), i % 8);
            const when = `${variant}: ${kind} (${d.name})`;
            // The "log continues after the cut" check once per kind of damage.
            const continues = !seenContinue.has(kind) && i > 0;
            if (continues) seenContinue.add(kind);
            await checkLogRecovery(work, fx, when, continues, rng);
            await Deno.remove(work, { recursive: true });
          }
          // Undamaged, the same dir holds the victim: the damage, not the fixture, made it go.
          const src = await spawnSource(pristine, QUIET);
          try {
            const victim = await request(objectUrl(src.url, fx.victim));
            assert.equal(victim.status, 200);
            assert.equal(victim.bytes.length, variant === "single" ? 300 * KiB + 1 : 2.5 * MiB + 7);
            assert.equal((await stats(src)).lsn.last, fx.lastLsn);
          } finally {
            await src.kill();
          }
        }),
    );
  });
}

// ----------------------------------------------------------- superblock damage

/** CP 1 and CP 2 committed, more writes in the log only, killed. CP 2 is in slot 0. */
async function prepareSuperblock(dir: string, rng: Prng): Promise<Model> {
  const model = new Model();
  const src = await spawnSource(dir, QUIET);
  try {
    await put(src, model, "a/one", rng.bytes(100 * KiB + 3));
    await put(src, model, "a/multi", rng.bytes(2.5 * MiB + 11));
    await put(src, model, "a/gone", rng.bytes(4096));
    assert.equal(await cp(src), 1);
    await put(src, model, "a/one", rng.bytes(64 * KiB)); // replaced in CP 2
    await range(src, model, "a/multi", 4095, rng.bytes(9000)); // patched in CP 2
    await put(src, model, "b/new", rng.bytes(1.5 * MiB));
    await del(src, model, "a/gone");
    assert.equal(await cp(src), 2);
    // Log only:
    await put(src, model, "c/log", rng.bytes(33_333));
    await range(src, model, "b/new", 1.5 * MiB - 10, rng.bytes(20)); // extends it
    await src.kill();
    assert.equal(slotCp(dir, 0), 2, "CP 2 is in slot 0");
    assert.equal(slotCp(dir, 1), 1, "CP 1 is in slot 1");
    return model;
  } finally {
    await src.kill();
  }
}

const SB_DAMAGES: Array<{ name: string; damage: (volume: string) => void }> = [
  { name: "a bit of the CP number", damage: (v) => flipBit(v, 40, 0) },
  { name: "a bit of the LSN covered", damage: (v) => flipBit(v, 48, 1) },
  { name: "a bit of the catalog root", damage: (v) => flipBit(v, 56, 2) },
  { name: "a bit of the padding", damage: (v) => flipBit(v, 2000, 3) },
  { name: "a bit of the checksum", damage: (v) => flipBit(v, BLOCK_SIZE - 1, 7) },
  { name: "the magic", damage: (v) => flipBit(v, 0, 4) },
  { name: "the whole slot zeroed", damage: (v) => overwrite(v, 0, new Uint8Array(BLOCK_SIZE)) },
  {
    // A torn sector write: the second half of the slot still holds older bytes.
    name: "a torn write (second half from another superblock)",
    damage: (v) => {
      const f = Deno.openSync(v, { read: true });
      const older = new Uint8Array(BLOCK_SIZE / 2);
      try {
        f.seekSync(BLOCK_SIZE + BLOCK_SIZE / 2, Deno.SeekMode.Start);
        f.readSync(older);
      } finally {
        f.close();
      }
      overwrite(v, BLOCK_SIZE / 2, older);
    },
  },
];

Deno.test("torn superblock: a corrupt newest slot is passed over; the previous CP plus the log lose nothing", async () => {
  const seed = testSeed(0x5b10c);
  await withSeed(seed, "torn superblock", () =>
    withTempDir("refsync-torn-sb-", async (tmp) => {
      const rng = new Prng(seed);
      const pristine = `${tmp}/pristine`;
      const model = await prepareSuperblock(pristine, rng);
      for (let i = 0; i < SB_DAMAGES.length; i++) {
        const d = SB_DAMAGES[i];
        const work = `${tmp}/case-${i}`;
        await copyDir(pristine, work);
        d.damage(`${work}/volume.dat`);
        const when = `superblock slot 0 (CP 2): ${d.name}`;
        let src = await spawnSource(work, QUIET);
        try {
          const digest = await requestJson<{ cp: number }>(`${src.url}/v1/admin/digest`);
          assert.equal(digest.json.cp, 1, `${when}: the damaged CP 2 was passed over for CP 1`);
          await verify(src, model, when);
          if (i === 0) {
            // A new CP goes to slot 0 again (CP 2) and repairs the slot.
            assert.equal(await cp(src), 2, `${when}: the next CP is 2 again`);
            await src.kill();
            assert.equal(slotCp(work, 0), 2, `${when}: slot 0 rewritten`);
            src = await spawnSource(work, QUIET);
            const again = await requestJson<{ cp: number }>(`${src.url}/v1/admin/digest`);
            assert.equal(again.json.cp, 2, `${when}: after a new CP and a crash, CP 2 is back`);
            await verify(src, model, `${when}, then a new CP, a crash and a restart`);
          }
        } finally {
          await src.kill();
        }
        await Deno.remove(work, { recursive: true });
      }

      // Both slots damaged: the source must refuse to start (clearly), never start empty.
      const work = `${tmp}/both`;
      await copyDir(pristine, work);
      flipBit(`${work}/volume.dat`, 100, 0);
      flipBit(`${work}/volume.dat`, BLOCK_SIZE + 100, 0);
      let started: ApplianceProcess | null = null;
      try {
        started = await spawnSource(work, QUIET, { startTimeoutMs: 20_000 });
      } catch (e) {
        assert.ok(e instanceof ApplianceStartError, String(e));
        assert.notEqual(e.status.code, 0, "a failed start exits non-zero");
        assert.match(e.stderr, /superblock/i, "the error names the superblock");
      } finally {
        if (started) await started.kill();
      }
      assert.equal(started, null, "the source started on a volume with no valid superblock");
    }));
});

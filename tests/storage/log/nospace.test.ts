/**
 * A full disk under the NVLOG: an append that runs out of space is the domain
 * error `no_space`, leaves no partial frame (the file is cut back to where the
 * append began), counts nothing, and does not poison the next append.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { isError } from "../../../src/errors/mod.ts";
import { parseFrames } from "../../../src/protocol/log-frame/mod.ts";
import { NvLog, segmentName } from "../../../src/storage/log/mod.ts";
import { FullDisk } from "../../support/faulty-fs.ts";
import { bytes, put, putFrames, withTempDir } from "./helpers.ts";

/** Frame size of a `put` with a 3-byte key and a 3000-byte payload. */
const FRAME = 96 + 3 + 3000;

Deno.test("a full disk during an append: no_space, no partial frame, the next append fits", async () => {
  await withTempDir(async (dir) => {
    const disk = new FullDisk();
    const log = await NvLog.open(dir, { fileOps: disk });
    const payloads = [0, 1, 2].map((i) => bytes(3000, i));
    await log.append([put("k-0", payloads[0])]);
    await log.append([put("k-1", payloads[1])]);
    const file = join(dir, segmentName(1));
    assert.equal(Deno.statSync(file).size, 2 * FRAME);

    // Room for a third of a frame: the kernel takes what fits, then ENOSPC.
    disk.budget = 1000;
    assert.throws(
      () => log.write([put("k-2", payloads[2])]),
      (e) => isError(e, "no_space") && /log segment/.test(e.message),
    );
    assert.equal(disk.failures, 1);
    assert.equal(Deno.statSync(file).size, 2 * FRAME, "the torn frame was cut off");
    assert.equal(log.lastLsn, 2);
    assert.equal(log.stats.records, 2);
    assert.equal(parseFrames(log.readFrames(1, 1 << 20)).length, 2);
    await log.flush();

    // Space is back: the next append lands where the failed one began.
    disk.budget = Infinity;
    const [rec] = await log.append([put("k-2", payloads[2])]);
    assert.equal(rec.lsn, 3);
    assert.equal(rec.position.payloadOffset, 2 * FRAME + 96 + 3);
    assert.equal(Deno.statSync(file).size, 3 * FRAME);
    await log.close();

    const again = await NvLog.open(dir);
    assert.equal(again.recovery.dropped, undefined, "nothing torn to drop at reopen");
    assert.deepEqual(
      [...again.records(1)].map((r) => again.readPayload(r.position, 0, r.header.payloadLength)),
      payloads,
    );
    await again.close();
  });
});

Deno.test("a full disk during the destination's append of frames: none of them counted", async () => {
  await withTempDir(async (dir) => {
    const disk = new FullDisk();
    const log = await NvLog.open(dir, { fileOps: disk });
    const payloads = [0, 1, 2].map((i) => bytes(2000, 10 + i));
    const body = putFrames(1, payloads);
    // The first frame and half of the second fit.
    disk.budget = 3000;
    assert.throws(() => log.writeFrames(body), (e) => isError(e, "no_space"));
    assert.equal(log.lastLsn, 0);
    assert.equal(Deno.statSync(join(dir, segmentName(1))).size, 0);
    disk.budget = Infinity;
    const { lastLsn } = await log.appendFrames(body);
    assert.equal(lastLsn, 3);
    assert.deepEqual(log.readFrames(1, 1 << 20), body);
    await log.close();
  });
});

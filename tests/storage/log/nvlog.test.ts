import assert from "node:assert/strict";
import { join } from "node:path";
import { hashBlocks } from "../../../src/hash/blake3.ts";
import {
  encodeFrame,
  Flag,
  type Frame,
  FrameError,
  FrameReader,
  HEADER_SIZE,
  Op,
  parseFrames,
} from "../../../src/protocol/log-frame/mod.ts";
import {
  groupTransactions,
  LogCorruptionError,
  LogStateError,
  NvLog,
  segmentName,
} from "../../../src/storage/log/mod.ts";
import { bytes, put, putFrames, segmentFiles, withTempDir } from "./helpers.ts";

const SIZES = [0, 1, 4096, 10_000, 777];

async function fill(dir: string, sizes = SIZES, opts = {}): Promise<Uint8Array[]> {
  const log = await NvLog.open(dir, opts);
  const payloads = sizes.map((n, i) => bytes(n, 1000 + i));
  for (const [i, p] of payloads.entries()) await log.append([put(`key-${i}`, p)]);
  await log.close();
  return payloads;
}

/** Checks that the log holds exactly `payloads` as LSN 1.. with keys key-i. */
function assertHolds(log: NvLog, payloads: Uint8Array[]): void {
  assert.equal(log.lastLsn, payloads.length);
  const recs = [...log.records(1)];
  assert.equal(recs.length, payloads.length);
  recs.forEach((r, i) => {
    assert.equal(r.header.lsn, i + 1);
    assert.equal(r.header.key, `key-${i}`);
    assert.deepEqual(log.readPayload(r.position, 0, r.header.payloadLength), payloads[i]);
  });
}

Deno.test("readRecordPayload: a slice of a record's payload, null for a record not held or too short", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const payload = bytes(10_000, 7);
    await log.append([put("a", payload)]);
    assert.deepEqual(log.readRecordPayload(1, 4096, 4096), payload.subarray(4096, 8192));
    assert.deepEqual(log.readRecordPayload(1, 0, 10_000), payload);
    assert.equal(log.readRecordPayload(1, 8192, 4096), null, "past the payload's end");
    assert.equal(log.readRecordPayload(2, 0, 1), null, "a record not written");
    await log.close();
  });
});

Deno.test("append: consecutive LSNs from 1, positions, durable across reopen", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    assert.equal(log.lastLsn, 0);
    assert.equal(log.firstLsn, 1);
    assert.deepEqual(segmentFiles(dir), [segmentName(1)]);
    const payloads = [bytes(5000, 1), bytes(3, 2), bytes(8192, 3)];
    const appended = await log.append(payloads.map((p, i) => put(`key-${i}`, p)));
    assert.deepEqual(appended.map((a) => a.lsn), [1, 2, 3]);
    assert.equal(log.durableLsn, 3);
    assert.equal(appended[0].position.payloadOffset, HEADER_SIZE + 5);
    assert.equal(appended[0].blockDigests.length, 32);
    assert.equal(appended[2].blockDigests.length, 64);
    // Partial reads into a caller's buffer.
    const into = new Uint8Array(100);
    const view = log.readPayload(appended[0].position, 4000, 50, into);
    assert.equal(view.buffer, into.buffer);
    assert.deepEqual(view, payloads[0].subarray(4000, 4050));
    assert.throws(() => log.readPayload(appended[2].position, 8000, 193), RangeError);
    await log.close();

    const again = await NvLog.open(dir);
    assert.equal(again.recovery.records, 3);
    assert.equal(again.recovery.dropped, undefined);
    assertHolds(again, payloads);
    const [next] = await again.append([put("key-3", bytes(1, 4))]);
    assert.equal(next.lsn, 4);
    await again.close();
    await again.close(); // idempotent
    assert.throws(() => again.write([put("k", bytes(1, 1))]), LogStateError);
  });
});

Deno.test("write: frames readable and forwardable before durable; durable resolves later", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const ticket = log.write([put("key-0", bytes(100, 1)), put("key-1", bytes(200, 2))]);
    assert.equal(ticket.lastLsn, 2);
    assert.equal(log.durableLsn, 0, "not durable before the sync ran");
    const resent = log.readFrames(1, 1 << 20);
    assert.deepEqual(
      resent.length,
      ticket.records[0].frame.length + ticket.records[1].frame.length,
    );
    assert.deepEqual(parseFrames(resent).map((f) => f.bytes), ticket.records.map((r) => r.frame));
    await ticket.durable;
    assert.equal(log.durableLsn, 2);
    await log.close();
  });
});

Deno.test("write: an invalid record refuses the whole batch, nothing written", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    await log.append([put("a", bytes(10, 1))]);
    const size = Deno.statSync(join(dir, segmentName(1))).size;
    assert.throws(
      () => log.write([put("b", bytes(10, 2)), put("", bytes(1, 3))]),
      (e) => e instanceof FrameError && /LSN 3: key length 0/.test(e.message),
    );
    assert.throws(
      () => log.write([{ fields: { op: Op.WRITE, key: "c", txn: 99 }, payload: bytes(1, 1) }]),
      FrameError,
    );
    assert.equal(log.lastLsn, 1);
    assert.equal(Deno.statSync(join(dir, segmentName(1))).size, size);
    await log.close();
  });
});

Deno.test("group commit: concurrent appends share fdatasyncs; all consecutive and durable", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const n = 240;
    const payloads = Array.from({ length: n }, (_, i) => bytes(100 + (i % 7) * 1000, i));
    const pending: Promise<number>[] = [];
    // Waves across macrotasks, so some arrive while a sync is in flight and queue for the next.
    for (let wave = 0; wave < 8; wave++) {
      for (let i = wave * 30; i < wave * 30 + 30; i++) {
        pending.push(log.append([put(`key-${i}`, payloads[i])]).then(([a]) => a.lsn));
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    const lsns = await Promise.all(pending);
    assert.deepEqual(lsns, Array.from({ length: n }, (_, i) => i + 1));
    const stats = log.stats;
    assert.equal(stats.records, n);
    assert.equal(stats.writes, n);
    assert.ok(stats.fdatasyncs < n, `fdatasyncs ${stats.fdatasyncs} < appends ${n}`);
    assert.ok(stats.groupCommits <= 9, `group commits ${stats.groupCommits}`);
    assert.equal(stats.durableLsn, n);
    await log.close();

    const again = await NvLog.open(dir);
    assertHolds(again, payloads);
    await again.close();
  });
});

Deno.test("appendFrames: verbatim; gaps, repeats and bad frames refused before any write", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const first = putFrames(1, [bytes(10, 1), bytes(5000, 2), bytes(0, 3)]);
    const { lastLsn, records } = await log.appendFrames(first);
    assert.equal(lastLsn, 3);
    assert.equal(records[1].blockDigests.length, 32);
    const file = join(dir, segmentName(1));
    assert.deepEqual(
      Deno.readFileSync(file),
      first,
      "the file holds the received bytes as they are",
    );

    const refused = (input: Uint8Array | Frame[], pattern: RegExp) =>
      assert.rejects(
        () => log.appendFrames(input),
        (e: unknown) => e instanceof FrameError && pattern.test(e.message),
      );
    await refused(putFrames(5, [bytes(1, 1)]), /frame at LSN 5: expected LSN 4 \(a gap of 1\)/);
    await refused(putFrames(3, [bytes(1, 1)]), /frame at LSN 3: expected LSN 4 \(a repeat/);
    // A batch whose later frame is wrong is refused whole.
    const gapInside = new Uint8Array([
      ...putFrames(4, [bytes(1, 1)]),
      ...putFrames(6, [bytes(1, 1)]),
    ]);
    await refused(gapInside, /frame at LSN 6: expected LSN 5/);
    const corrupt = putFrames(4, [bytes(50, 1), bytes(50, 2)]);
    corrupt[corrupt.length - 1] ^= 1;
    await refused(corrupt, /frame at LSN 5: payload digest mismatch/);
    await refused(putFrames(4, [bytes(50, 1)]).subarray(0, 100), /input ended inside a frame/);
    assert.equal(log.lastLsn, 3);
    assert.deepEqual(Deno.readFileSync(file), first, "nothing was written");

    // Frames from a FrameReader are taken without re-hashing.
    const more = putFrames(4, [bytes(9000, 4), bytes(1, 5)]);
    const frames: Frame[] = [];
    for await (const f of ReadableStream.from([more]).pipeThrough(new FrameReader())) {
      frames.push(f);
    }
    assert.equal((await log.appendFrames(frames)).lastLsn, 5);
    await refused(frames, /frame at LSN 4: expected LSN 6/);
    await log.close();

    const again = await NvLog.open(dir);
    assert.equal(again.lastLsn, 5);
    assert.deepEqual(again.readFrames(1, 1 << 30), new Uint8Array([...first, ...more]));
    await again.close();
  });
});

/** Appends SIZES, damages the last segment with `damage(file, offsetOfFrame(lsn))`, reopens. */
async function damaged(
  damage: (file: string, frameOffset: (lsn: number) => number) => void,
  check: (log: NvLog, payloads: Uint8Array[]) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const payloads = await fill(dir);
    const offsets: number[] = [];
    {
      const log = await NvLog.open(dir);
      for (const r of log.records(1)) {
        offsets.push(r.position.payloadOffset - HEADER_SIZE - r.header.keyLength);
      }
      await log.close();
    }
    damage(join(dir, segmentName(1)), (lsn) => offsets[lsn - 1]);
    const log = await NvLog.open(dir);
    try {
      await check(log, payloads);
    } finally {
      await log.close();
    }
    // Appending continued at the right LSN and survives another reopen.
    const again = await NvLog.open(dir);
    assert.equal(again.recovery.dropped, undefined);
    await again.close();
  });
}

function truncateFile(file: string, size: number): void {
  const f = Deno.openSync(file, { write: true });
  f.truncateSync(size);
  f.close();
}

function flipBit(file: string, at: number): void {
  const f = Deno.openSync(file, { read: true, write: true });
  const b = new Uint8Array(1);
  f.seekSync(at, Deno.SeekMode.Start);
  f.readSync(b);
  b[0] ^= 0x04;
  f.seekSync(at, Deno.SeekMode.Start);
  f.writeSync(b);
  f.close();
}

Deno.test("torn write: a truncated last frame is dropped at every cut point", async () => {
  const last = SIZES.length; // LSN 5, key "key-4", 777-byte payload
  const frameLength = HEADER_SIZE + 5 + SIZES[last - 1];
  for (const keep of [1, 23, 24, 50, 95, 96, 99, 101, 500, frameLength - 1]) {
    await damaged(
      (file, frameOffset) => truncateFile(file, frameOffset(last) + keep),
      async (log, payloads) => {
        assert.equal(log.lastLsn, last - 1, `cut at ${keep}`);
        assert.equal(log.recovery.dropped?.bytes, keep);
        assert.match(log.recovery.dropped!.reason, /truncated/);
        assertHolds(log, payloads.slice(0, -1));
        const [a] = await log.append([put("key-4", payloads[last - 1])]);
        assert.equal(a.lsn, last);
        assertHolds(log, payloads);
      },
    );
  }
});

Deno.test("torn write: a bit flip in the last frame (header, key or payload) drops it", async () => {
  const last = SIZES.length;
  const cases: Array<[number, RegExp]> = [
    [0, /bad magic/],
    [5, /frame length|exceeds|truncated/],
    [9, /header checksum mismatch/],
    [45, /header checksum mismatch/],
    [90, /header checksum mismatch/],
    [HEADER_SIZE + 2, /header checksum mismatch/], // key
    [HEADER_SIZE + 5 + 400, /payload digest mismatch/],
  ];
  for (const [at, reason] of cases) {
    await damaged(
      (file, frameOffset) => flipBit(file, frameOffset(last) + at),
      async (log, payloads) => {
        assert.equal(log.lastLsn, last - 1, `flip at ${at}`);
        assert.match(log.recovery.dropped!.reason, reason);
        assertHolds(log, payloads.slice(0, -1));
        assert.equal((await log.append([put("key-4", payloads[last - 1])]))[0].lsn, last);
      },
    );
  }
  // A torn batch: the damaged record and all after it are dropped, earlier ones kept.
  await damaged(
    (file, frameOffset) => flipBit(file, frameOffset(3) + HEADER_SIZE + 6 + 100),
    (log, payloads) => {
      assert.equal(log.lastLsn, 2);
      assert.equal(log.recovery.dropped?.offset, log.readFrames(1, 1 << 20).length);
      assertHolds(log, payloads.slice(0, 2));
      return Promise.resolve();
    },
  );
});

Deno.test("BLOCK_DIGESTS records reopen beside plain ones; a flipped payload bit in one is a torn tail", async () => {
  const sizes = [10_000, 4096, 777, 9000];
  for (const at of [100, 8192 + 5]) { // in a full block, in the tail
    await withTempDir(async (dir) => {
      const payloads = sizes.map((n, i) => bytes(n, 2000 + i));
      const log = await NvLog.open(dir);
      for (const [i, p] of payloads.entries()) {
        // Records 2 and 4 are ranged writes: digests derived from their block digests.
        const flags = i % 2 === 0 ? Flag.COMMIT_NOW | Flag.REPLACE : Flag.COMMIT_NOW;
        const blockDigests = i % 2 === 0 ? 0 : Flag.BLOCK_DIGESTS;
        await log.append([{
          fields: { op: Op.WRITE, flags: flags | blockDigests, key: `key-${i}` },
          payload: p,
        }]);
      }
      await log.close();
      const again = await NvLog.open(dir);
      assertHolds(again, payloads);
      const last = [...again.records(4)][0];
      await again.close();
      flipBit(join(dir, segmentName(1)), last.position.payloadOffset + at);
      const cut = await NvLog.open(dir);
      assert.equal(cut.lastLsn, 3);
      assert.match(cut.recovery.dropped!.reason, /frame at LSN 4: payload digest mismatch/);
      assertHolds(cut, payloads.slice(0, 3));
      await cut.close();
    });
  }
});

Deno.test("corruption before the last segment, or a missing segment, is an error naming file and offset", async () => {
  await withTempDir(async (dir) => {
    await fill(dir, [3000, 3000, 3000, 3000, 3000, 3000], { segmentSize: 7000 });
    const files = segmentFiles(dir);
    assert.deepEqual(files, [segmentName(1), segmentName(3), segmentName(5)]);
    const second = HEADER_SIZE + 5 + 3000; // offset of the second frame in a segment
    flipBit(join(dir, files[1]), second + 200);
    await assert.rejects(
      () => NvLog.open(dir),
      (e: unknown) =>
        e instanceof LogCorruptionError && e.segment === files[1] && e.offset === second &&
        /segment 0000000000000003\.seg offset 3101: frame at LSN 4: payload digest mismatch \(before the last segment/
          .test(e.message),
    );
    flipBit(join(dir, files[1]), second + 200); // repair
    Deno.removeSync(join(dir, files[1]));
    await assert.rejects(
      () => NvLog.open(dir),
      (e: unknown) =>
        e instanceof LogCorruptionError &&
        /first LSN 5 does not follow .*1\.seg \(last LSN 2\)/.test(e.message),
    );
  });
});

Deno.test("rotation, readFrames, readPayload, dropThrough", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir, { segmentSize: 10_000 });
    const payloads = Array.from({ length: 20 }, (_, i) => bytes(3000, i));
    for (const [i, p] of payloads.entries()) await log.append([put(`key-${i}`, p)]);
    const files = segmentFiles(dir);
    assert.equal(files.length, 7); // 3 frames of 3101 bytes per 10 000-byte segment
    assert.deepEqual(files, [1, 4, 7, 10, 13, 16, 19].map(segmentName));
    assert.equal(log.stats.rotations, 6);

    // readFrames: whole frames only, at least one, from any LSN, across segments.
    assert.equal(parseFrames(log.readFrames(1, 1)).length, 1);
    const batch = parseFrames(log.readFrames(5, 20_000));
    assert.deepEqual(batch.map((f) => f.header.lsn), [5, 6, 7, 8, 9, 10]);
    assert.deepEqual(batch[3].payload, payloads[7]);
    assert.equal(parseFrames(log.readFrames(1, 1 << 30)).length, 20);
    assert.equal(log.readFrames(21, 1 << 20).length, 0);

    const recs = [...log.records(1)];
    assert.deepEqual(
      log.readPayload(recs[10].position, 1000, 10),
      payloads[10].subarray(1000, 1010),
    );

    // dropThrough keeps every segment holding an LSN above the bound.
    const drop = log.dropThrough(8);
    assert.deepEqual(drop.segments, [segmentName(1), segmentName(4)]);
    assert.equal(drop.firstLsn, 7);
    assert.equal(log.firstLsn, 7);
    assert.deepEqual(segmentFiles(dir), [7, 10, 13, 16, 19].map(segmentName));
    assert.throws(
      () => log.readFrames(5, 100),
      (e) => e instanceof LogStateError && /starts at LSN 7/.test(e.message),
    );
    assert.throws(() => log.readPayload(recs[0].position, 0, 1), /dropped/);
    assert.throws(() => [...log.records(6)], LogStateError);
    assert.deepEqual(
      [...log.records(7)].map((r) => r.header.lsn),
      Array.from({ length: 14 }, (_, i) => i + 7),
    );
    // A wholly covered active segment is rolled: an empty successor carries the next LSN.
    assert.deepEqual(log.dropThrough(1000).segments, [7, 10, 13, 16, 19].map(segmentName));
    assert.deepEqual(segmentFiles(dir), [segmentName(21)]);
    assert.equal(log.firstLsn, 21);
    assert.equal(log.lastLsn, 20);
    // Segments holding records not yet durable are kept, whatever the bound.
    const t1 = log.write([put("key-20", bytes(3000, 20))]); // LSN 21, into segment 21
    const t2 = log.write([put("key-21", bytes(3000, 21))]); // LSN 22, into segment 21
    assert.deepEqual(log.dropThrough(1000).segments, [], "LSN 21 is not durable yet");
    assert.deepEqual(segmentFiles(dir), [segmentName(21)]);
    await Promise.all([t1.durable, t2.durable]);
    assert.deepEqual(log.dropThrough(1000).segments, [segmentName(21)]);
    assert.deepEqual(segmentFiles(dir), [segmentName(23)]);
    await log.close();

    const again = await NvLog.open(dir, { segmentSize: 10_000 });
    assert.equal(again.firstLsn, 23);
    assert.equal(again.lastLsn, 22);
    assert.equal((await again.append([put("key-22", bytes(1, 1))]))[0].lsn, 23);
    await again.close();
  });
});

Deno.test("dropThrough of a partly covered active segment rolls it at the next write", async () => {
  await withTempDir(async (dir) => {
    // Segments far larger than the records: without a roll nothing would ever be dropped.
    const log = await NvLog.open(dir, { segmentSize: 1 << 30 });
    for (let i = 0; i < 4; i++) await log.append([put(`k${i}`, bytes(1000, i))]);
    assert.deepEqual(log.dropThrough(2).segments, [], "LSNs 3 and 4 are not covered");
    await log.append([put("k4", bytes(1000, 4))]); // LSN 5 starts a new segment
    assert.deepEqual(segmentFiles(dir), [1, 5].map(segmentName));
    assert.deepEqual(log.dropThrough(4).segments, [segmentName(1)]);
    assert.equal(log.firstLsn, 5);
    assert.deepEqual([...log.records(5)].map((r) => r.header.lsn), [5]);
    await log.close();
  });
});

Deno.test("truncateAfter and reset (also a reset interrupted by a crash)", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir, { segmentSize: 7000 });
    for (let i = 0; i < 10; i++) await log.append([put(`key-${i}`, bytes(3000, i))]);
    await assert.rejects(() => log.truncateAfter(-5), LogStateError);
    await log.truncateAfter(4); // to a segment boundary: the segment from LSN 5 stays, empty
    assert.equal(log.lastLsn, 4);
    assert.deepEqual(segmentFiles(dir), [1, 3, 5].map(segmentName));
    assert.equal(Deno.statSync(join(dir, segmentName(5))).size, 0);
    assert.equal((await log.append([put("x", bytes(5, 5))]))[0].lsn, 5);
    await log.truncateAfter(3); // inside a segment
    assert.equal(log.lastLsn, 3);
    assert.deepEqual(segmentFiles(dir), [1, 3].map(segmentName));
    assert.equal(Deno.statSync(join(dir, segmentName(3))).size, 3101);
    await log.truncateAfter(2);
    assert.deepEqual(segmentFiles(dir), [segmentName(1), segmentName(3)]);
    await log.close();

    const b = await NvLog.open(dir, { segmentSize: 7000 });
    assert.equal(b.lastLsn, 2);
    await b.reset(100);
    assert.deepEqual(segmentFiles(dir), [segmentName(101)]);
    assert.equal(b.firstLsn, 101);
    assert.equal(b.lastLsn, 100);
    assert.equal((await b.append([put("y", bytes(1, 1))]))[0].lsn, 101);
    await b.close();

    // A crash after the reset intent became durable: open() completes the reset.
    Deno.writeFileSync(join(dir, segmentName(501).replace(".seg", ".reset")), new Uint8Array(0));
    const c = await NvLog.open(dir);
    assert.equal(c.recovery.completedReset, 500);
    assert.deepEqual(segmentFiles(dir), [segmentName(501)]);
    assert.equal((await c.append([put("z", bytes(1, 1))]))[0].lsn, 501);
    await c.close();
  });
});

Deno.test("records() + groupTransactions replay a multi-record transaction with its ETag", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    const etag = bytes(32, 9);
    const [w1] = await log.append([{
      fields: { op: Op.WRITE, key: "big", offset: 0 },
      payload: bytes(4096, 1),
    }]);
    await log.append([put("small", bytes(10, 2))]);
    await log.append([
      { fields: { op: Op.WRITE, key: "big", offset: 4096, txn: w1.lsn }, payload: bytes(100, 3) },
      {
        fields: { op: Op.COMMIT, flags: Flag.REPLACE, key: "big", offset: 4196, txn: w1.lsn },
        payload: etag,
      },
    ]);
    // A transaction in one call; its COMMIT never comes.
    await log.append([
      { fields: { op: Op.WRITE, key: "open", offset: 0 }, payload: bytes(5, 4) },
      { fields: { op: Op.WRITE, key: "open", offset: 5, txn: "first" }, payload: bytes(5, 5) },
    ]);
    await log.append([{ fields: { op: Op.DELETE, key: "small" } }]);
    await log.close();

    const again = await NvLog.open(dir);
    const ops = groupTransactions(again.records());
    assert.deepEqual(ops.map((o) => [o.kind, o.key, o.commitLsn, o.size]), [
      ["write", "small", 2, 10],
      ["write", "big", 4, 4196],
      ["delete", "small", 7, undefined],
    ]);
    assert.deepEqual([...again.records(5)].map((r) => r.header.txn), [5, 5, 7]);
    assert.deepEqual(ops[1].etag, etag);
    assert.deepEqual(ops[1].writes.map((w) => [w.lsn, w.offset, w.length]), [[1, 0, 4096], [
      3,
      4096,
      100,
    ]]);
    assert.deepEqual(again.readPayload(ops[1].writes[1].position, 0, 100), bytes(100, 3));
    await again.close();
  });
});

Deno.test("readRecordBlocks: digests of the bytes read back, also when a received block flipped at rest", async () => {
  await withTempDir(async (dir) => {
    const log = await NvLog.open(dir);
    // Received frames whose verification hashed their blocks (BLOCK_DIGESTS): their digests are kept.
    const payload = bytes(3 * 4096, 11);
    const frame = encodeFrame({
      lsn: 1,
      op: Op.WRITE,
      flags: Flag.BLOCK_DIGESTS | Flag.COMMIT_NOW,
      key: "k",
      txn: 1,
      offset: 0,
      mtime: 1,
    }, payload).bytes;
    await log.appendFrames([...parseFrames(frame)]);
    assert.deepEqual(log.readRecordBlocks(1, 4096, 2), {
      bytes: payload.subarray(4096),
      digests: hashBlocks(payload.subarray(4096)),
    });
    assert.equal(log.readRecordBlocks(1, 8192, 2), null, "past the payload's end");
    assert.equal(log.readRecordBlocks(2, 0, 1), null, "a record not written");
    // A bit flips in block 1 on disk after receipt: its digest is of what is read now.
    const file = join(dir, segmentFiles(dir)[0]);
    const disk = Deno.readFileSync(file);
    disk[HEADER_SIZE + 1 + 4096 + 77] ^= 0x01;
    Deno.writeFileSync(file, disk);
    const read = log.readRecordBlocks(1, 0, 3)!;
    assert.notDeepEqual(read.bytes, payload);
    assert.deepEqual(read.digests, hashBlocks(read.bytes));
    await log.close();
  });
});

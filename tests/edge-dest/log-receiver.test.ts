/**
 * Reference frames on the destination: a reference it can resolve is
 * appended as the whole frame, byte for byte; a forged one (wrong LSN, a
 * block not live, a check that lies) or one naming bytes corrupted here
 * appends the frames before it and asks for that frame (`need`), never a
 * wrong frame.
 *
 * @module
 */
import assert from "node:assert/strict";
import { receiveLog } from "../../src/edge-dest/log-receiver.ts";
import {
  encodeFrame,
  encodeRefFrame,
  Flag,
  Op,
  type Piece,
} from "../../src/protocol/log-frame/mod.ts";
import { newWireStats } from "../../src/protocol/cp-sync/stats.ts";
import { createLogger } from "../../src/logging/mod.ts";
import { isError } from "../../src/errors/mod.ts";
import { ObjectStore } from "../../src/storage/objects/store.ts";
import { withTempDir } from "../storage/helpers.ts";

const OPTS = { cpDirtyBytes: 1 << 20, maxObjectBytes: 1 << 30, mirror: true };
const quiet = createLogger({ level: "error" });

/** A deterministic payload of `n` bytes, distinct per seed. */
function payloadOf(seed: number, n: number): Uint8Array {
  const p = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    p[i] = x >>> 24;
  }
  return p;
}

function frame(lsn: number, payload: Uint8Array, key = `k${lsn}`): Uint8Array {
  const flags = Flag.COMMIT_NOW | Flag.REPLACE;
  return encodeFrame({ lsn, op: Op.WRITE, flags, key, txn: lsn, offset: 0, mtime: 1 }, payload)
    .bytes;
}

function body(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(parts);
}

/** A destination holding records 1 (payload A) and 2 (payload B). */
async function withDest(
  fn: (store: ObjectStore, dir: string, a: Uint8Array, b: Uint8Array) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const store = await ObjectStore.open(dir, OPTS);
    try {
      const a = payloadOf(1, 3 * 4096 + 100);
      const b = payloadOf(2, 2 * 4096);
      const got = await receiveLog(store, body(frame(1, a), frame(2, b)), newWireStats(), quiet);
      assert.deepEqual(got, { lastLsn: 2 });
      await fn(store, dir, a, b);
    } finally {
      await store.close();
    }
  });
}

Deno.test("log receiver: a reference frame is appended as the whole frame it stands for", async () => {
  await withDest(async (store, _dir, a, b) => {
    // Record 3 is a new key holding block 1 of A, B, then 10 bytes of its own.
    const own = payloadOf(3, 10);
    const payload = new Uint8Array([...a.subarray(4096, 8192), ...b, ...own]);
    const whole = frame(3, payload, "other/key");
    const pieces: Piece[] = [
      { kind: "log", lsn: 1, payloadOffset: 4096, length: 4096 },
      { kind: "log", lsn: 2, payloadOffset: 0, length: b.length },
      { kind: "bytes", bytes: own },
    ];
    const ref = encodeRefFrame(whole, pieces);
    assert.ok(ref.length < 200, `a reference frame of ${ref.length} bytes`);
    const wire = newWireStats();
    assert.deepEqual(await receiveLog(store, body(ref), wire, quiet), { lastLsn: 3 });
    assert.deepEqual(store.log.readFrames(3, 1 << 20), whole);
    assert.equal(wire.logRefBlocks, 2);
    assert.equal(wire.logRefBytes, whole.length - ref.length);
  });
});

/** Sends record 3 (whole) and record 4 as `ref`; the answer must ask for 4 and hold 3 only. */
async function assertNeeds4(store: ObjectStore, ref: Uint8Array): Promise<void> {
  const three = frame(3, payloadOf(3, 500));
  const five = frame(5, payloadOf(5, 500));
  const got = await receiveLog(store, body(three, ref, five), newWireStats(), quiet);
  assert.deepEqual(got, { lastLsn: 3, need: 4 });
  assert.equal(store.log.lastLsn, 3);
  assert.deepEqual(store.log.readFrames(3, 1 << 20), three);
}

Deno.test("log receiver: a forged reference gets its frame asked for, never appended", async (t) => {
  const a4 = payloadOf(1, 3 * 4096 + 100).subarray(0, 4096);
  const whole = frame(4, a4);
  await t.step("an LSN this log does not hold", async () => {
    await withDest(async (store) => {
      await assertNeeds4(
        store,
        encodeRefFrame(whole, [{ kind: "log", lsn: 99, payloadOffset: 0, length: 4096 }]),
      );
    });
  });
  await t.step("bytes of another record (the digest does not match)", async () => {
    await withDest(async (store) => {
      await assertNeeds4(
        store,
        encodeRefFrame(whole, [{ kind: "log", lsn: 2, payloadOffset: 0, length: 4096 }]),
      );
    });
  });
  await t.step("a block not live in the committed CP", async () => {
    await withDest(async (store) => {
      await assertNeeds4(
        store,
        encodeRefFrame(whole, [{ kind: "block", block: 12345, check: new Uint8Array(16) }]),
      );
    });
  });
  await t.step("a check that lies about a live block", async () => {
    await withDest(async (store) => {
      // Block 1 (a superblock slot) is live; its check is not sixteen zeros.
      assert.ok(store.volume.isLive(1));
      await assertNeeds4(
        store,
        encodeRefFrame(whole, [{ kind: "block", block: 1, check: new Uint8Array(16) }]),
      );
    });
  });
});

Deno.test("log receiver: a referenced record corrupted here gets its frame asked for", async () => {
  await withDest(async (store, dir, a) => {
    // Flip one byte of record 1's payload in the segment file.
    const needle = a.subarray(4096, 4096 + 64);
    let flipped = false;
    for (const path of filesUnder(dir)) {
      const bytes = await Deno.readFile(path);
      const at = indexOf(bytes, needle);
      if (at < 0) continue;
      const file = await Deno.open(path, { write: true });
      try {
        await file.seek(at + 7, Deno.SeekMode.Start);
        await file.write(new Uint8Array([bytes[at + 7] ^ 0x01]));
      } finally {
        file.close();
      }
      flipped = true;
    }
    assert.ok(flipped, "record 1's payload is in a file of the log");
    const whole = frame(4, a.subarray(4096, 8192));
    await assertNeeds4(
      store,
      encodeRefFrame(whole, [{ kind: "log", lsn: 1, payloadOffset: 4096, length: 4096 }]),
    );
  });
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function* filesUnder(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* filesUnder(path);
    else if (e.isFile) yield path;
  }
}

Deno.test("log receiver: a reference frame after a gap, or repeating a record held, is refused as a whole frame would be", async () => {
  await withDest(async (store, _dir, a) => {
    const whole = (lsn: number) => frame(lsn, a.subarray(0, 4096));
    const refTo1 = (lsn: number) =>
      encodeRefFrame(whole(lsn), [{ kind: "log", lsn: 1, payloadOffset: 0, length: 4096 }]);
    for (
      const [lsn, what] of [[5, "a gap of 2"], [2, "a repeat of a record the log holds"]] as const
    ) {
      await assert.rejects(
        () => receiveLog(store, body(refTo1(lsn)), newWireStats(), quiet),
        (e) => isError(e, "conflict") && e.message.includes(`expected LSN 3 (${what})`),
        `a reference frame at LSN ${lsn}`,
      );
      assert.equal(store.log.lastLsn, 2, "nothing appended");
    }
    // After frames of the same body, the next LSN counts them.
    const three = frame(3, payloadOf(3, 500));
    await assert.rejects(
      () => receiveLog(store, body(three, refTo1(5)), newWireStats(), quiet),
      (e) => isError(e, "conflict") && e.message.includes("expected LSN 4 (a gap of 1)"),
    );
    assert.equal(store.log.lastLsn, 3, "the frame before it was appended");
    assert.deepEqual(await receiveLog(store, body(refTo1(4)), newWireStats(), quiet), {
      lastLsn: 4,
    });
  });
});

import assert from "node:assert/strict";
import { encodeFrame, Flag, type FrameFields, Op } from "../../../src/protocol/log-frame/mod.ts";
import {
  groupTransactions,
  TransactionGrouper,
  type TxRecord,
} from "../../../src/storage/log/mod.ts";
import { bytes } from "./helpers.ts";

/** A record as the log would give it (the position is fake but distinct per LSN). */
function rec(
  lsn: number,
  op: FrameFields["op"],
  key: string,
  opts: { flags?: number; txn?: number; offset?: number; payload?: Uint8Array } = {},
): TxRecord {
  const payload = opts.payload ?? new Uint8Array(0);
  const { header } = encodeFrame(
    {
      lsn,
      op,
      key,
      flags: opts.flags ?? 0,
      txn: opts.txn ?? lsn,
      offset: opts.offset ?? 0,
      mtime: lsn * 10,
    },
    payload,
  );
  const r: TxRecord = { header, position: { segment: 1, payloadOffset: lsn * 1000 } };
  return op === Op.COMMIT ? { ...r, inline: payload } : r;
}

const PUT = Flag.COMMIT_NOW | Flag.REPLACE;

Deno.test("groupTransactions: interleaved transactions come out in commit order", () => {
  const etag = bytes(32, 1);
  const ops = groupTransactions([
    rec(1, Op.WRITE, "a", { payload: bytes(4096, 1) }), // txn 1 starts
    rec(2, Op.WRITE, "b", { payload: bytes(10, 2), offset: 100 }), // txn 2 starts (ranged)
    rec(3, Op.WRITE, "c", { flags: PUT, payload: bytes(7, 3) }), // a PUT on its own
    rec(4, Op.WRITE, "a", { txn: 1, offset: 4096, payload: bytes(5, 4) }),
    rec(5, Op.COMMIT, "b", { txn: 2 }),
    rec(6, Op.DELETE, "c"),
    rec(7, Op.COMMIT, "a", { txn: 1, flags: Flag.REPLACE, offset: 4101, payload: etag }),
    rec(8, Op.WRITE, "d", { flags: Flag.COMMIT_NOW, offset: 9, payload: bytes(3, 5) }), // ranged, own txn
    rec(9, Op.COMMIT, "e", { flags: Flag.REPLACE }), // empty transaction: a zero-size object
  ]);
  assert.deepEqual(
    ops.map((
      o,
    ) => [o.kind, o.key, o.txn, o.commitLsn, o.replace, o.size, o.writes.map((w) => w.lsn)]),
    [
      ["write", "c", 3, 3, true, 7, [3]],
      ["write", "b", 2, 5, false, undefined, [2]],
      ["delete", "c", 6, 6, false, undefined, []],
      ["write", "a", 1, 7, true, 4101, [1, 4]],
      ["write", "d", 8, 8, false, undefined, [8]],
      ["write", "e", 9, 9, true, 0, []],
    ],
  );
  // A one-record PUT's ETag is not in the log (derived from its blocks): readers compute it.
  assert.equal(ops[0].etag, undefined);
  assert.deepEqual(ops[3].etag, etag);
  assert.equal(ops[1].etag, undefined);
  assert.equal(ops[3].mtime, 70);
  assert.deepEqual(ops[3].writes[1], {
    lsn: 4,
    offset: 4096,
    length: 5,
    position: { segment: 1, payloadOffset: 4000 },
  });
  assert.deepEqual(ops[1].writes[0].offset, 100);
});

Deno.test("groupTransactions: a transaction whose COMMIT is missing is dropped whole", () => {
  const records = [
    rec(1, Op.WRITE, "big", { payload: bytes(100, 1) }),
    rec(2, Op.WRITE, "x", { flags: PUT, payload: bytes(1, 2) }),
    rec(3, Op.WRITE, "big", { txn: 1, offset: 100, payload: bytes(100, 3) }),
  ];
  assert.deepEqual(groupTransactions(records).map((o) => o.key), ["x"]);
  const g = new TransactionGrouper();
  for (const r of records) g.add(r);
  assert.deepEqual(g.open(), [{ txn: 1, key: "big", lsns: [1, 3], headless: false }]);
});

Deno.test("groupTransactions: a COMMIT whose transaction began before the input is refused", () => {
  // Replay started at LSN 3, inside transaction 1.
  const records = [
    rec(3, Op.WRITE, "big", { txn: 1, offset: 100, payload: bytes(100, 3) }),
    rec(4, Op.COMMIT, "big", { txn: 1 }),
  ];
  assert.throws(
    () => groupTransactions(records),
    /transaction 1 \(COMMIT at LSN 4\) began before the first record given \(LSN 3\)/,
  );
  // Without its COMMIT it is merely open (and marked headless).
  const g = new TransactionGrouper();
  g.add(records[0]);
  assert.deepEqual(g.open(), [{ txn: 1, key: "big", lsns: [3], headless: true }]);
});

Deno.test("groupTransactions: inconsistent sequences are errors", () => {
  assert.throws(
    () => groupTransactions([rec(2, Op.DELETE, "a"), rec(2, Op.DELETE, "a")]),
    /out of order: LSN 2 after 2/,
  );
  assert.throws(
    () =>
      groupTransactions([
        rec(1, Op.DELETE, "a"),
        rec(2, Op.WRITE, "a", { txn: 1, payload: bytes(1, 1) }),
      ]),
    /record LSN 2 names transaction 1, which is not open/,
  );
  assert.throws(
    () =>
      groupTransactions([
        rec(1, Op.WRITE, "a", { payload: bytes(1, 1) }),
        rec(2, Op.COMMIT, "b", { txn: 1 }),
      ]),
    /record LSN 2 is for key "b" but transaction 1 is for "a"/,
  );
  // A transaction cannot be committed twice.
  assert.throws(
    () =>
      groupTransactions([
        rec(1, Op.WRITE, "a", { payload: bytes(1, 1) }),
        rec(2, Op.COMMIT, "a", { txn: 1 }),
        rec(3, Op.COMMIT, "a", { txn: 1 }),
      ]),
    /record LSN 3 names transaction 1, which is not open/,
  );
});

/**
 * Turns a record sequence into committed operations, in commit order. A
 * transaction whose COMMIT is missing is never returned (never half-applied).
 *
 * @module
 */
import { DIGEST_LENGTH, Flag, type FrameHeader, Op } from "../../protocol/log-frame/mod.ts";
import type { LogPosition } from "./types.ts";

/** The input: a record header with where its payload lies (an {@link Appended} or {@link LogRecord} fits). */
export interface TxRecord {
  /** The record's verified header. */
  header: FrameHeader;
  /** Where its payload lies. */
  position: LogPosition;
  /** The COMMIT's payload, when known (the ETag of a replacing transaction). */
  inline?: Uint8Array;
}

/** One WRITE of a committed operation. */
export interface TxWrite {
  /** LSN of the WRITE record. */
  lsn: number;
  /** Object byte offset. */
  offset: number;
  /** Payload bytes. */
  length: number;
  /** Where the payload lies in the log (for {@link NvLog.readPayload}). */
  position: LogPosition;
}

/** A committed operation. */
export interface CommittedOp {
  /** A write transaction or a DELETE. */
  kind: "write" | "delete";
  /** The object key. */
  key: string;
  /** LSN of the transaction's first record. */
  txn: number;
  /** The object becomes exactly `writes` (sized `size`), not a patch of its old bytes. */
  replace: boolean;
  /** Object size, when `replace`. */
  size?: number;
  /**
   * When `replace` by a transaction: its ETag, the COMMIT's first 32 payload
   * bytes. Undefined otherwise (a one-record PUT's is not in the log).
   */
  etag?: Uint8Array;
  /** When `replace`: the metadata blob the COMMIT carried after the ETag, if any. */
  meta?: Uint8Array;
  /** LSN of the record that committed it (its COMMIT, or itself). */
  commitLsn: number;
  /** mtime of the committing record. */
  mtime: number;
  /** In LSN order; empty for a delete. */
  writes: TxWrite[];
}

/** A transaction without its COMMIT (yet). */
export interface OpenTransaction {
  /** LSN of its first record. */
  txn: number;
  /** The object key. */
  key: string;
  /** LSNs of its writes seen so far. */
  lsns: number[];
  /** True when its first record precedes the input (its COMMIT would be refused). */
  headless: boolean;
}

interface Pending {
  key: string;
  writes: TxWrite[];
  headless: boolean;
}

/**
 * Incremental form of {@link groupTransactions}: feed records in LSN order,
 * get each operation as its commit arrives. Useful to apply transactions as
 * frames are received, and to find the oldest open transaction (replay after a
 * CP must start at or before it).
 *
 * @example
 * ```ts
 * import type { NvLog } from "./nvlog.ts";
 * declare const log: NvLog;
 * declare const from: number;
 * declare function apply(op: CommittedOp): void;
 * const g = new TransactionGrouper();
 * for (const r of log.records(from)) {
 *   const op = g.add(r);
 *   if (op) apply(op);
 * }
 * console.log(g.open()); // transactions still waiting for their COMMIT
 * ```
 */
export class TransactionGrouper {
  #pending = new Map<number, Pending>();
  #firstLsn: number | undefined;
  #lastLsn = 0;

  /** Adds the next record; returns the operation it commits, if any. @throws Error on an inconsistent sequence. */
  add(record: TxRecord): CommittedOp | undefined {
    const h = record.header;
    if (h.lsn <= this.#lastLsn) {
      throw new Error(`records out of order: LSN ${h.lsn} after ${this.#lastLsn}`);
    }
    this.#firstLsn ??= h.lsn;
    this.#lastLsn = h.lsn;
    const replace = (h.flags & Flag.REPLACE) !== 0;
    switch (h.op) {
      case Op.DELETE:
        return this.#op(h, "delete", false, []);
      case Op.WRITE: {
        const w: TxWrite = {
          lsn: h.lsn,
          offset: h.offset,
          length: h.payloadLength,
          position: record.position,
        };
        if ((h.flags & Flag.COMMIT_NOW) !== 0) {
          const op = this.#op(h, "write", replace, [w]);
          // Its ETag is not in the log (./etag.ts in objects derives it from the block
          // digests): left unknown, readers compute it from the bytes on first use.
          if (replace) op.size = h.payloadLength;
          return op;
        }
        this.#pendingFor(h).writes.push(w);
        return undefined;
      }
      case Op.COMMIT: {
        const p = this.#pendingFor(h);
        this.#pending.delete(h.txn);
        if (p.headless) {
          throw new Error(
            `transaction ${h.txn} (COMMIT at LSN ${h.lsn}) began before the first record given ` +
              `(LSN ${this.#firstLsn}): replay must start at or before the oldest open transaction`,
          );
        }
        const op = this.#op(h, "write", replace, p.writes);
        if (replace) {
          op.size = h.offset;
          // COMMIT payload: the ETag, then the object's metadata blob when it has one.
          const inline = record.inline;
          if (inline && inline.length >= DIGEST_LENGTH) {
            op.etag = inline.subarray(0, DIGEST_LENGTH);
            if (inline.length > DIGEST_LENGTH) op.meta = inline.slice(DIGEST_LENGTH);
          }
        }
        return op;
      }
      default:
        throw new Error(`record LSN ${h.lsn}: unknown op ${h.op}`);
    }
  }

  /** Transactions whose COMMIT has not been seen, oldest first. */
  open(): OpenTransaction[] {
    return [...this.#pending.entries()]
      .sort(([a], [b]) => a - b)
      .map(([txn, p]) => ({
        txn,
        key: p.key,
        lsns: p.writes.map((w) => w.lsn),
        headless: p.headless,
      }));
  }

  #op(h: FrameHeader, kind: "write" | "delete", replace: boolean, writes: TxWrite[]): CommittedOp {
    return { kind, key: h.key, txn: h.txn, replace, commitLsn: h.lsn, mtime: h.mtime, writes };
  }

  /** The open transaction a WRITE or COMMIT belongs to, starting it when the record is its first. */
  #pendingFor(h: FrameHeader): Pending {
    let p = this.#pending.get(h.txn);
    if (!p) {
      if (h.txn === h.lsn) {
        p = { key: h.key, writes: [], headless: false };
      } else if (h.txn < (this.#firstLsn ?? h.lsn)) {
        // Its start was before the input; remembered so a COMMIT can say why it is refused.
        p = { key: h.key, writes: [], headless: true };
      } else {
        throw new Error(`record LSN ${h.lsn} names transaction ${h.txn}, which is not open`);
      }
      this.#pending.set(h.txn, p);
    }
    if (p.key !== h.key) {
      throw new Error(
        `record LSN ${h.lsn} is for key ${JSON.stringify(h.key)} but transaction ${h.txn} ` +
          `is for ${JSON.stringify(p.key)}`,
      );
    }
    return p;
  }
}

/**
 * The committed operations of a record sequence (LSN order), in commit order.
 * Records of different transactions may interleave; a transaction without its
 * COMMIT is left out.
 *
 * @throws Error when the sequence is inconsistent (out of order, a record of an
 *   unknown transaction, a key change inside a transaction, or a COMMIT whose
 *   transaction began before the input).
 *
 * @example
 * ```ts
 * import type { NvLog } from "./nvlog.ts";
 * declare const log: NvLog;
 * declare const cpLsn: number;
 * declare const engine: { apply(op: CommittedOp): void };
 * for (const op of groupTransactions(log.records(cpLsn + 1))) engine.apply(op);
 * ```
 */
export function groupTransactions(records: Iterable<TxRecord>): CommittedOp[] {
  const grouper = new TransactionGrouper();
  const ops: CommittedOp[] = [];
  for (const r of records) {
    const op = grouper.add(r);
    if (op) ops.push(op);
  }
  return ops;
}

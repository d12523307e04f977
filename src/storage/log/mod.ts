/**
 * The NVLOG: durable write log of the appliance (docs/internals.md, section 2).
 *
 * - {@link NvLog}: segmented append-only files, group commit, recovery, replay reads;
 * - {@link groupTransactions} / {@link TransactionGrouper}: records -> committed operations;
 * - {@link LogCorruptionError}, {@link LogStateError}.
 *
 * @example
 * ```ts
 * import { groupTransactions, NvLog } from "./mod.ts";
 * import type { CommittedOp } from "./transactions.ts";
 * declare function apply(op: CommittedOp): void;
 * const cpLsn = 0;
 * const log = await NvLog.open(await Deno.makeTempDir());
 * for (const op of groupTransactions(log.records(cpLsn + 1))) apply(op);
 * ```
 *
 * @module
 */
export { DEFAULT_SEGMENT_SIZE, NvLog, type NvLogOptions, outOfOrder } from "./nvlog.ts";
export { LogCorruptionError, LogStateError } from "./errors.ts";
export {
  type CommittedOp,
  groupTransactions,
  type OpenTransaction,
  TransactionGrouper,
  type TxRecord,
  type TxWrite,
} from "./transactions.ts";
export { parseSegmentName, segmentName } from "./segment.ts";
export type {
  Appended,
  AppendFields,
  AppendRecord,
  DropReport,
  LogPosition,
  LogRecord,
  NvLogStats,
  RecoveryReport,
  TxnRef,
  WriteTicket,
} from "./types.ts";

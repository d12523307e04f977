/**
 * The NVLOG: durable write log of the appliance (see DESIGN.md, "Storage / NVLOG").
 *
 * - {@link NvLog}: segmented append-only files, group commit, recovery, replay reads;
 * - {@link groupTransactions} / {@link TransactionGrouper}: records -> committed operations;
 * - {@link LogCorruptionError}, {@link LogStateError}.
 *
 * @example
 * ```ts
 * import { groupTransactions, NvLog } from "./mod.ts";
 * const log = await NvLog.open("data/log");
 * for (const op of groupTransactions(log.records(cpLsn + 1))) apply(op);
 * ```
 *
 * @module
 */
export { DEFAULT_SEGMENT_SIZE, NvLog, type NvLogOptions } from "./nvlog.ts";
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

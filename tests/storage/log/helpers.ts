/**
 * Shared helpers of the log tests: payloads, temp directories, records.
 *
 * @module
 */
import { concatBytes } from "../../../src/bytes/mod.ts";
import { encodeFrame, Flag, Op } from "../../../src/protocol/log-frame/mod.ts";
import type { FrameFields } from "../../../src/protocol/log-frame/mod.ts";
import type { AppendRecord } from "../../../src/storage/log/mod.ts";
import { Prng } from "../../support/prng.ts";

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Uint8Array {
  return new Prng(seed).bytes(n);
}

/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "refsync-log-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fields of a self-committing whole-object write. */
export function putFields(lsn: number, key: string, mtime = 1_700_000_000_000): FrameFields {
  return {
    lsn,
    op: Op.WRITE,
    flags: Flag.COMMIT_NOW | Flag.REPLACE,
    key,
    txn: lsn,
    offset: 0,
    mtime,
  };
}

/** A PUT record for NvLog.write. */
export function put(key: string, payload: Uint8Array): AppendRecord {
  return {
    fields: { op: Op.WRITE, flags: Flag.COMMIT_NOW | Flag.REPLACE, key, mtime: 1 },
    payload,
  };
}

/** Encodes consecutive PUT frames from `firstLsn`, concatenated. */
export function putFrames(firstLsn: number, payloads: Uint8Array[]): Uint8Array {
  const parts = payloads.map((p, i) =>
    encodeFrame(putFields(firstLsn + i, `k${firstLsn + i}`), p).bytes
  );
  return concatBytes(parts);
}

/** The segment files of a log directory, sorted. */
export function segmentFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".seg")).sort();
}

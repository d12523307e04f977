/**
 * Shared helpers of the log tests: seeded randomness, temp directories, records.
 *
 * @module
 */
import { encodeFrame, Flag, Op } from "../../src/protocol/log-frame/mod.ts";
import type { FrameFields } from "../../src/protocol/log-frame/mod.ts";
import type { AppendRecord } from "../../src/storage/log/mod.ts";

/** mulberry32: small, seeded, deterministic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 256) | 0;
  return out;
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
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The segment files of a log directory, sorted. */
export function segmentFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".seg")).sort();
}

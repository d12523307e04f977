/**
 * Command-line flags of every role, with their defaults and clear errors.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** Configuration of a source appliance. */
export interface SourceConfig {
  host: string;
  port: number;
  data: string;
  dest: string | null;
  token: string | null;
  cpIntervalMs: number;
  cpDirtyBytes: number;
  maxObjectBytes: number;
  syncTimeoutMs: number;
  cpSync: "refs" | "full";
  s3: S3Flags;
}

/** The S3 face's flags (both roles). */
export interface S3Flags {
  /** Port of the S3 face, or null for none. */
  port: number | null;
  /** `--s3-access-key` / `REFSYNC_S3_ACCESS_KEY`, else null (kept in the data directory). */
  accessKey: string | null;
  /** `--s3-secret-key` / `REFSYNC_S3_SECRET_KEY`, else null. */
  secretKey: string | null;
  /** `--s3-upload-expiry`: unfinished multipart uploads older than this (ms) are dropped. */
  uploadExpiryMs: number;
}

/** Configuration of a destination appliance. */
export interface DestConfig {
  host: string;
  port: number;
  data: string;
  token: string | null;
  cpIntervalMs: number;
  cpDirtyBytes: number;
  maxObjectBytes: number;
  s3: S3Flags;
}

/** Defaults, shared by the README and `--help`. */
export const DEFAULTS = {
  host: "127.0.0.1",
  sourcePort: 8080,
  destPort: 8081,
  cpIntervalMs: 1000,
  cpDirtyBytes: 64 * 2 ** 20,
  maxObjectBytes: 5 * 2 ** 30,
  syncTimeoutMs: 5000,
  /** S3 ports of `pair` (`deno task start`). */
  sourceS3Port: 9000,
  destS3Port: 9001,
  /** Unfinished multipart uploads are dropped after a day. */
  s3UploadExpiryMs: 24 * 3600_000,
} as const;

/**
 * Parses `64MiB`, `1GiB`, `4096`, `512KiB`, `1G` into bytes.
 *
 * @example
 * ```ts
 * parseBytes("64MiB"); // 67108864
 * ```
 */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$/i.exec(text.trim());
  if (!m) {
    throw new UsageError(`${flag}: '${text}' is not a size; use e.g. 4096, 512KiB, 64MiB, 5GiB`);
  }
  const unit = (m[2] ?? "b").toLowerCase()[0];
  const scale = { b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[unit]!;
  return Math.floor(Number(m[1]) * scale);
}

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {}

function int(text: string | undefined, flag: string, fallback: number, min = 0): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`${flag}: '${text}' is not an integer >= ${min}`);
  }
  return n;
}

const COMMON = {
  host: { type: "string" },
  port: { type: "string" },
  data: { type: "string" },
  token: { type: "string" },
  "cp-interval": { type: "string" },
  "cp-dirty-bytes": { type: "string" },
  "max-object-bytes": { type: "string" },
  "s3-port": { type: "string" },
  "s3-access-key": { type: "string" },
  "s3-secret-key": { type: "string" },
  "s3-upload-expiry": { type: "string" },
  help: { type: "boolean" },
} as const;

function parse(args: string[], extra: Record<string, { type: "string" | "boolean" }> = {}) {
  try {
    return parseArgs({
      args,
      options: { ...COMMON, ...extra },
      strict: true,
      allowPositionals: false,
    })
      .values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

function token(values: Record<string, unknown>): string | null {
  return (values.token as string | undefined) ?? Deno.env.get("REFSYNC_TOKEN") ?? null;
}

function storeFlags(v: Record<string, string | boolean | undefined>) {
  return {
    cpIntervalMs: int(
      v["cp-interval"] as string | undefined,
      "--cp-interval",
      DEFAULTS.cpIntervalMs,
    ),
    cpDirtyBytes: v["cp-dirty-bytes"] === undefined
      ? DEFAULTS.cpDirtyBytes
      : parseBytes(v["cp-dirty-bytes"] as string, "--cp-dirty-bytes"),
    maxObjectBytes: v["max-object-bytes"] === undefined
      ? DEFAULTS.maxObjectBytes
      : parseBytes(v["max-object-bytes"] as string, "--max-object-bytes"),
  };
}

function s3Flags(v: Record<string, string | boolean | undefined>): S3Flags {
  const port = v["s3-port"] as string | undefined;
  // An empty value (an unset variable exported empty) counts as none.
  const accessKey = (v["s3-access-key"] as string | undefined) ||
    Deno.env.get("REFSYNC_S3_ACCESS_KEY") || null;
  const secretKey = (v["s3-secret-key"] as string | undefined) ||
    Deno.env.get("REFSYNC_S3_SECRET_KEY") || null;
  if ((accessKey === null) !== (secretKey === null)) {
    throw new UsageError("--s3-access-key and --s3-secret-key go together (or neither: generated)");
  }
  return {
    port: port === undefined ? null : int(port, "--s3-port", 0),
    accessKey,
    secretKey,
    uploadExpiryMs: int(
      v["s3-upload-expiry"] as string | undefined,
      "--s3-upload-expiry",
      DEFAULTS.s3UploadExpiryMs,
      1000,
    ),
  };
}

/** Parses the flags of `refsync source`. */
export function parseSourceArgs(args: string[]): SourceConfig {
  const v = parse(args, {
    dest: { type: "string" },
    "sync-timeout": { type: "string" },
    "cp-sync": { type: "string" },
  });
  const cpSync = (v["cp-sync"] as string | undefined) ?? "refs";
  if (cpSync !== "refs" && cpSync !== "full") {
    throw new UsageError(`--cp-sync: '${cpSync}' is not refs or full`);
  }
  const dest = (v.dest as string | undefined) ?? null;
  if (dest !== null && !/^https?:\/\//.test(dest)) {
    throw new UsageError(`--dest: '${dest}' is not an http:// URL`);
  }
  const config: SourceConfig = {
    host: (v.host as string | undefined) ?? DEFAULTS.host,
    port: int(v.port as string | undefined, "--port", DEFAULTS.sourcePort),
    data: (v.data as string | undefined) ?? "./data/source",
    dest,
    token: token(v),
    syncTimeoutMs: int(
      v["sync-timeout"] as string | undefined,
      "--sync-timeout",
      DEFAULTS.syncTimeoutMs,
      1,
    ),
    cpSync,
    s3: s3Flags(v),
    ...storeFlags(v),
  };
  if (config.dest !== null && config.token === null) {
    throw new UsageError(
      "--dest needs the pair token: --token or REFSYNC_TOKEN (the destination prints it)",
    );
  }
  return config;
}

/** Parses the flags of `refsync dest`. */
export function parseDestArgs(args: string[]): DestConfig {
  const v = parse(args);
  return {
    host: (v.host as string | undefined) ?? DEFAULTS.host,
    port: int(v.port as string | undefined, "--port", DEFAULTS.destPort),
    data: (v.data as string | undefined) ?? "./data/dest",
    token: token(v),
    s3: s3Flags(v),
    ...storeFlags(v),
  };
}

/** True when --help or -h is among `args`. */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

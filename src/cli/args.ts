/**
 * Command-line flags of every role, with their defaults and clear errors.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_BODY_IDLE_TIMEOUT_MS } from "../http/body-timeout.ts";
import { LOG_LEVELS, type LogLevel, parseLogLevel } from "../logging/mod.ts";
import { isLoopbackHost } from "../protocol/auth/mod.ts";
import { parseDuration } from "./duration.ts";
import { SYNC_POLICIES, type SyncPolicy } from "../protocol/mirror-state/mod.ts";
import { parseSize } from "./size.ts";

/** Configuration of a source appliance. */
export interface SourceConfig {
  host: string;
  port: number;
  data: string;
  dest: string | null;
  token: string | null;
  /** Every object call needs it when set (`--client-token`, REFSYNC_CLIENT_TOKEN). */
  clientToken: string | null;
  cpIntervalMs: number;
  cpDirtyBytes: number;
  maxObjectBytes: number;
  syncTimeoutMs: number;
  /** `--sync-policy`: strict (503 past --sync-timeout) or available (acknowledged locally). */
  syncPolicy: SyncPolicy;
  cpSync: "refs" | "full";
  /** `--verify-interval`: an online verify of the pair this often (ms); 0 or absent: never. */
  verifyIntervalMs?: number;
  bodyIdleTimeoutMs: number;
  spaceReserve: number;
  logLevel: LogLevel;
  s3: S3Flags;
  /**
   * `--dest-log-port`: the port of the destination's log stream on the --dest
   * host, when it differs from the one the destination announces (a port
   * mapping between them); "off": log batches go as HTTP requests. Absent or
   * null: the announced one.
   */
  destLogPort?: number | "off" | null;
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
  /** Every object call needs it when set (`--client-token`, REFSYNC_CLIENT_TOKEN). */
  clientToken: string | null;
  cpIntervalMs: number;
  cpDirtyBytes: number;
  maxObjectBytes: number;
  bodyIdleTimeoutMs: number;
  spaceReserve: number;
  logLevel: LogLevel;
  s3: S3Flags;
  /**
   * `--repl-port`: the log stream's TCP port (0: any free one, announced in
   * the handshake); null (`off`): none, log batches come as HTTP requests.
   * Absent: 0.
   */
  replPort?: number | null;
  /**
   * `--rejoin`: an old source's data directory (after a promotion over it)
   * becomes this destination, to be caught up by the promoted side (a
   * failback); absent or false: a source's directory is refused.
   */
  rejoin?: boolean;
}

/** What `refsync promote` needs. */
export interface PromoteConfig {
  url: string;
  token: string;
}

/** Configuration of `refsync pair`: a destination in `DATA/dest`, a source in `DATA/source`. */
export interface PairConfig {
  /** The parent of both data directories. */
  data: string;
  /** The source's dest URL is the destination's, known once it listens. */
  source: SourceConfig;
  dest: DestConfig;
}

/** Defaults, shared by the README and `--help`. */
export const DEFAULTS = {
  host: "127.0.0.1",
  sourcePort: 8080,
  destPort: 8081,
  cpIntervalMs: 1000,
  cpDirtyBytes: 64 * 2 ** 20,
  maxObjectBytes: 5 * 2 ** 30,
  spaceReserve: 8 * 2 ** 20,
  syncTimeoutMs: 5000,
  bodyIdleTimeoutMs: DEFAULT_BODY_IDLE_TIMEOUT_MS,
  logLevel: "info",
  /** S3 ports of `pair` (`deno task start`). */
  sourceS3Port: 9000,
  destS3Port: 9001,
  /** Unfinished multipart uploads are dropped after a day. */
  s3UploadExpiryMs: 24 * 3600_000,
} as const;

/**
 * The bytes of `flag`'s value `text` (`64MiB`, `1GiB`, `4096`, `512KiB`, `1G`).
 *
 * @example
 * ```ts
 * import { parseBytes } from "./args.ts";
 *
 * parseBytes("64MiB", "--cp-dirty-bytes"); // 67108864
 * ```
 */
export function parseBytes(text: string, flag: string): number {
  const bytes = parseSize(text);
  if (bytes === null) {
    throw new UsageError(`${flag}: '${text}' is not a size; use e.g. 4096, 512KiB, 64MiB, 5GiB`);
  }
  return bytes;
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
  "client-token": { type: "string" },
  "insecure-open": { type: "boolean" },
  "cp-interval": { type: "string" },
  "cp-dirty-bytes": { type: "string" },
  "max-object-bytes": { type: "string" },
  "body-idle-timeout": { type: "string" },
  "space-reserve": { type: "string" },
  "log-level": { type: "string" },
  "s3-port": { type: "string" },
  "s3-access-key": { type: "string" },
  "s3-secret-key": { type: "string" },
  "s3-upload-expiry": { type: "string" },
  help: { type: "boolean" },
} as const;

/** Flags of a source that a destination does not have. */
const SOURCE_ONLY = {
  dest: { type: "string" },
  "sync-timeout": { type: "string" },
  "sync-policy": { type: "string" },
  "cp-sync": { type: "string" },
  "verify-interval": { type: "string" },
  "dest-log-port": { type: "string" },
} as const;

/** Flags of a destination that a source does not have. */
const DEST_ONLY = {
  "repl-port": { type: "string" },
} as const;

/** `pair` has a port for each appliance instead of `--port`, and no `--dest`. */
const PAIR_ONLY = {
  "source-port": { type: "string" },
  "dest-port": { type: "string" },
  "source-s3-port": { type: "string" },
  "dest-s3-port": { type: "string" },
} as const;

type Options = Record<string, { type: "string" | "boolean" }>;
type Values = Record<string, string | boolean | undefined>;

/** The appliance flags plus `extra`, less `without`. */
function parse(args: string[], extra: Options = {}, without: string[] = []): Values {
  const options: Options = { ...COMMON, ...extra };
  for (const flag of without) delete options[flag];
  return parseFlags(args, options);
}

/** Parses `args` strictly: an unknown flag or a stray argument is a {@link UsageError}. */
function parseFlags(args: string[], options: Options): Values {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
}

function token(values: Record<string, unknown>): string | null {
  return nonEmpty(values.token, "REFSYNC_TOKEN", "--token");
}

/** A flag's value, else the environment variable's; an empty token is a mistake. */
function nonEmpty(flag: unknown, env: string, name: string): string | null {
  const value = (flag as string | undefined) ?? Deno.env.get(env) ?? null;
  if (value === "") throw new UsageError(`${name} (or ${env}) is empty`);
  return value;
}

/**
 * The client token. Off loopback the object API would be open to the network:
 * refused without a client token, unless `--insecure-open` says so.
 */
function clientToken(v: Values, host: string) {
  const given = nonEmpty(v["client-token"], "REFSYNC_CLIENT_TOKEN", "--client-token");
  if (given === null && !isLoopbackHost(host) && v["insecure-open"] !== true) {
    throw new UsageError(
      `--host ${host} is not a loopback address: anyone who reaches it could read and write ` +
        `objects. Give --client-token T (or REFSYNC_CLIENT_TOKEN) that every object call ` +
        `must send as Authorization: Bearer T, or --insecure-open to serve them to anyone`,
    );
  }
  return given;
}

/** A duration flag's value (`10m`, `30s`, `500` ms), or `fallback` when it is not given. */
function duration(text: string | boolean | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text as string);
  if (ms === null) {
    throw new UsageError(`${flag}: '${text}' is not a duration; use e.g. 0, 500ms, 30s, 10m, 6h`);
  }
  return ms;
}

/** A size flag's value (`64MiB`), or `fallback` when it is not given. */
function size(text: string | boolean | undefined, flag: string, fallback: number): number {
  return text === undefined ? fallback : parseBytes(text as string, flag);
}

function storeFlags(v: Values) {
  return {
    cpIntervalMs: int(
      v["cp-interval"] as string | undefined,
      "--cp-interval",
      DEFAULTS.cpIntervalMs,
    ),
    cpDirtyBytes: size(v["cp-dirty-bytes"], "--cp-dirty-bytes", DEFAULTS.cpDirtyBytes),
    maxObjectBytes: size(v["max-object-bytes"], "--max-object-bytes", DEFAULTS.maxObjectBytes),
    bodyIdleTimeoutMs: int(
      v["body-idle-timeout"] as string | undefined,
      "--body-idle-timeout",
      DEFAULTS.bodyIdleTimeoutMs,
      1,
    ),
    spaceReserve: size(v["space-reserve"], "--space-reserve", DEFAULTS.spaceReserve),
  };
}

function logLevel(v: Values): LogLevel {
  const text = (v["log-level"] as string | undefined) ?? DEFAULTS.logLevel;
  const level = parseLogLevel(text);
  if (level === null) {
    throw new UsageError(`--log-level: '${text}' is not one of ${LOG_LEVELS.join(", ")}`);
  }
  return level;
}

function s3Flags(v: Values): S3Flags {
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
  return sourceConfig(parse(args, SOURCE_ONLY));
}

function sourceConfig(v: Values, portFlag = "--port"): SourceConfig {
  const cpSync = (v["cp-sync"] as string | undefined) ?? "refs";
  if (cpSync !== "refs" && cpSync !== "full") {
    throw new UsageError(`--cp-sync: '${cpSync}' is not refs or full`);
  }
  const syncPolicy = (v["sync-policy"] as string | undefined) ?? "strict";
  if (!(SYNC_POLICIES as readonly string[]).includes(syncPolicy)) {
    throw new UsageError(`--sync-policy: '${syncPolicy}' is not ${SYNC_POLICIES.join(" or ")}`);
  }
  const dest = (v.dest as string | undefined) ?? null;
  if (dest !== null && !/^https?:\/\//.test(dest)) {
    throw new UsageError(`--dest: '${dest}' is not an http:// URL`);
  }
  const host = (v.host as string | undefined) ?? DEFAULTS.host;
  const config: SourceConfig = {
    host,
    port: int(v.port as string | undefined, portFlag, DEFAULTS.sourcePort),
    data: (v.data as string | undefined) ?? "./data/source",
    dest,
    token: token(v),
    clientToken: clientToken(v, host),
    syncTimeoutMs: int(
      v["sync-timeout"] as string | undefined,
      "--sync-timeout",
      DEFAULTS.syncTimeoutMs,
      1,
    ),
    syncPolicy: syncPolicy as SyncPolicy,
    cpSync,
    verifyIntervalMs: duration(v["verify-interval"], "--verify-interval", 0),
    destLogPort: portOrOff(v["dest-log-port"], "--dest-log-port") ?? null,
    logLevel: logLevel(v),
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
  const v = parse(args, { ...DEST_ONLY, rejoin: { type: "boolean" } });
  return { ...destConfig(v), rejoin: v.rejoin === true };
}

function destConfig(v: Values, portFlag = "--port"): DestConfig {
  const host = (v.host as string | undefined) ?? DEFAULTS.host;
  return {
    host,
    port: int(v.port as string | undefined, portFlag, DEFAULTS.destPort),
    data: (v.data as string | undefined) ?? "./data/dest",
    token: token(v),
    clientToken: clientToken(v, host),
    logLevel: logLevel(v),
    s3: s3Flags(v),
    replPort: nullIfOff(portOrOff(v["repl-port"], "--repl-port") ?? 0),
    ...storeFlags(v),
  };
}

function nullIfOff(port: number | "off"): number | null {
  return port === "off" ? null : port;
}

/** A port flag that may be `off`; undefined when it is not given. */
function portOrOff(text: string | boolean | undefined, flag: string): number | "off" | undefined {
  if (text === undefined || text === "off") return text;
  const port = Number(text);
  if (!/^[0-9]+$/.test(text as string) || port > 65535) {
    throw new UsageError(`${flag}: '${text}' is not a port (0-65535) or off`);
  }
  return port;
}

/**
 * Parses the flags of `refsync pair`: every flag of both appliances but
 * `--port`, `--dest` and `--rejoin`, plus `--source-port` and `--dest-port`; `--data` is
 * the parent of `source/` and `dest/`.
 *
 * @example
 * ```ts
 * const pair = parsePairArgs(["--data", "/tmp/pair", "--source-port", "0", "--dest-port", "0"]);
 * console.assert(pair.dest.data === "/tmp/pair/dest" && pair.source.dest === null);
 * ```
 */
export function parsePairArgs(args: string[]): PairConfig {
  const v = parse(args, { ...SOURCE_ONLY, ...DEST_ONLY, ...PAIR_ONLY }, [
    "port",
    "dest",
    "s3-port",
  ]);
  const data = (v.data as string | undefined) ?? "./data";
  // `pair` (deno task start) opens both S3 faces by default.
  const s3Port = (flag: string, port: number) => (v[flag] as string | undefined) ?? String(port);
  return {
    data,
    dest: destConfig({
      ...v,
      port: v["dest-port"],
      "s3-port": s3Port("dest-s3-port", DEFAULTS.destS3Port),
      data: `${data}/dest`,
    }, "--dest-port"),
    source: sourceConfig({
      ...v,
      port: v["source-port"],
      "s3-port": s3Port("source-s3-port", DEFAULTS.sourceS3Port),
      data: `${data}/source`,
    }, "--source-port"),
  };
}

/**
 * Parses the flags of `refsync verify`.
 *
 * @example
 * ```ts
 * parseVerifyArgs(["--data", "data/source"]); // { data: "data/source" }
 * ```
 */
export function parseVerifyArgs(args: string[]): { data: string } {
  const v = parseFlags(args, { data: COMMON.data, help: COMMON.help });
  if (v.data === undefined) throw new UsageError("verify needs --data DIR");
  return { data: v.data as string };
}

/** Parses the flags of `refsync promote`: the destination's URL and the pair token. */
export function parsePromoteArgs(args: string[]): PromoteConfig {
  const v = parseFlags(args, { url: { type: "string" }, token: COMMON.token, help: COMMON.help });
  const url = v.url as string | undefined;
  if (url === undefined || !/^https?:\/\//.test(url)) {
    throw new UsageError(
      url === undefined
        ? "promote needs --url of the destination"
        : `--url: '${url}' is not an http:// URL`,
    );
  }
  const t = token(v);
  if (t === null) {
    throw new UsageError(
      "promote needs the pair token: --token T or REFSYNC_TOKEN (the destination printed it; " +
        "it is kept in its DATA/pair-token)",
    );
  }
  return { url, token: t };
}

/** True when --help or -h is among `args`. */
export function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

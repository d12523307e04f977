/**
 * Command-line flags of every role, with their defaults and clear errors.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isLoopbackHost } from "../protocol/auth/mod.ts";
import { DEFAULT_BODY_IDLE_TIMEOUT_MS } from "../http/body-timeout.ts";

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
  spaceReserve: number;
  syncTimeoutMs: number;
  cpSync: "refs" | "full";
  bodyIdleTimeoutMs: number;
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
}

/** What `refsync promote` needs. */
export interface PromoteConfig {
  url: string;
  token: string;
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
  "client-token": { type: "string" },
  "insecure-open": { type: "boolean" },
  "cp-interval": { type: "string" },
  "cp-dirty-bytes": { type: "string" },
  "max-object-bytes": { type: "string" },
  "body-idle-timeout": { type: "string" },
  "space-reserve": { type: "string" },
  help: { type: "boolean" },
} as const;

type Options = Record<string, { type: "string" | "boolean" }>;

function parse(args: string[], extra: Options = {}, common: Options = COMMON) {
  try {
    return parseArgs({
      args,
      options: { ...common, ...extra },
      strict: true,
      allowPositionals: false,
    })
      .values as Record<string, string | boolean | undefined>;
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
function clientToken(v: Record<string, string | boolean | undefined>, host: string) {
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
    bodyIdleTimeoutMs: int(
      v["body-idle-timeout"] as string | undefined,
      "--body-idle-timeout",
      DEFAULTS.bodyIdleTimeoutMs,
      1,
    ),
    spaceReserve: v["space-reserve"] === undefined
      ? DEFAULTS.spaceReserve
      : parseBytes(v["space-reserve"] as string, "--space-reserve"),
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
  const host = (v.host as string | undefined) ?? DEFAULTS.host;
  const config: SourceConfig = {
    host,
    port: int(v.port as string | undefined, "--port", DEFAULTS.sourcePort),
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
    cpSync,
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
  const host = (v.host as string | undefined) ?? DEFAULTS.host;
  return {
    host,
    port: int(v.port as string | undefined, "--port", DEFAULTS.destPort),
    data: (v.data as string | undefined) ?? "./data/dest",
    token: token(v),
    clientToken: clientToken(v, host),
    ...storeFlags(v),
  };
}

/** Parses the flags of `refsync promote`: the destination's URL and the pair token. */
export function parsePromoteArgs(args: string[]): PromoteConfig {
  const v = parse(args, { url: { type: "string" } }, { token: COMMON.token });
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

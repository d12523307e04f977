/**
 * Structured logging: one JSON object per line on stderr,
 * `{"ts":...,"level":...,"event":...,...fields}`, filtered by `--log-level`.
 * stdout stays for the machine-readable `listening` event that scripts read.
 *
 * Components take a {@link Logger} in their options (so tests and the simulator
 * can capture or silence it) and fall back to {@link rootLogger}.
 *
 * @example
 * ```ts
 * import { createLogger } from "./mod.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", sink: (line) => lines.push(line) });
 * log.child({ role: "source" }).info("mirror.connected", { url: "http://127.0.0.1:8081" });
 * log.debug("cp.committed", { cp: 1 }); // below the level: not written
 * console.assert(lines.length === 1 && JSON.parse(lines[0]).role === "source");
 * ```
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** The levels in order, for `--log-level` and its usage text. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Extra fields of a log line. */
export type LogFields = Record<string, unknown>;

/** Writes structured events. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. `{role: "source"}`). */
  child(fields: LogFields): Logger;
  /** True when lines of `level` are written (to skip building costly fields). */
  enabled(level: LogLevel): boolean;
}

/** How a logger is made. */
export interface LoggerOptions {
  /** Lines below this level are dropped (default "info"). */
  level?: LogLevel;
  /** Where a finished line goes (default: stderr). */
  sink?: (line: string) => void;
  /** The timestamp of a line (default: wall clock); the simulator passes its own. */
  now?: () => number;
  /** Fields on every line. */
  fields?: LogFields;
}

const encoder = new TextEncoder();

function stderrSink(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: logging must never take the appliance down.
  }
}

/** Errors become their message: JSON.stringify would print `{}`. */
function jsonValue(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  return value;
}

/**
 * A logger writing JSON lines at or above `level`.
 *
 * @example
 * ```ts
 * import { createLogger } from "./mod.ts";
 * const log = createLogger({ level: "warn" });
 * log.warn("mirror.lost", { cause: new Error("connection refused") });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? Date.now;
  const make = (base: LogFields): Logger => {
    const write = (level: LogLevel) => (event: string, fields: LogFields = {}) => {
      if (RANK[level] < min) return;
      const line = { ts: new Date(now()).toISOString(), level, event, ...base, ...fields };
      sink(JSON.stringify(line, jsonValue));
    };
    return {
      debug: write("debug"),
      info: write("info"),
      warn: write("warn"),
      error: write("error"),
      child: (fields) => make({ ...base, ...fields }),
      enabled: (level) => RANK[level] >= min,
    };
  };
  return make(options.fields ?? {});
}

/** A logger that writes nothing. */
export const silentLogger: Logger = createLogger({ level: "error", sink: () => {} });

let root: Logger = createLogger();

/** The process-wide logger that components use when given none. */
export function rootLogger(): Logger {
  return root;
}

/**
 * Replaces the process-wide logger (the CLI does it once, from `--log-level`).
 *
 * @example
 * ```ts
 * import { createLogger, setRootLogger } from "./mod.ts";
 * setRootLogger(createLogger({ level: "debug" }));
 * ```
 */
export function setRootLogger(logger: Logger): void {
  root = logger;
}

/**
 * Parses a `--log-level` value.
 *
 * @example
 * ```ts
 * import { parseLogLevel } from "./mod.ts";
 * parseLogLevel("debug"); // "debug"
 * ```
 */
export function parseLogLevel(text: string): LogLevel | null {
  return (LOG_LEVELS as readonly string[]).includes(text) ? text as LogLevel : null;
}

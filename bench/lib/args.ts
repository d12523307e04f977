/**
 * Command-line options of `deno task bench`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseSize } from "../../src/cli/size.ts";
import { CORPUS_BYTES, DEFAULT_CORPUS } from "../workloads/types.ts";

/**
 * What runs: refsync mirroring with `refs` (default) or `full` (prior art) CP sync, refsync
 * alone (`local`), or the naive mirror of bench/naive (`naive`).
 */
export type Mode = "refs" | "full" | "local" | "naive";
/** Modes in report order. */
export const MODES: readonly Mode[] = ["refs", "full", "local", "naive"];

/** Parsed options. */
export interface BenchOptions {
  quick: boolean;
  /** Load seconds per run (the run also stops at `bytes`). */
  seconds: number;
  /** Client byte budget per run. */
  bytes: number;
  /** null: each workload's own default. */
  concurrency: number | null;
  workloads: string[];
  modes: Mode[];
  /** Parent of the run data folders; null: a temporary directory. */
  dataDir: string | null;
  seed: number;
  /** Passed to the appliances when set. */
  cpInterval: string | null;
  cpDirtyBytes: string | null;
  /** Where latest.json and latest.md go. */
  outDir: string;
  keepData: boolean;
  /** Checkout whose src/main.ts runs the appliances (A/B comparisons); null: this one. */
  repo: string | null;
  /** `realfiles`: corpus directories; null: the workload's default list. */
  corpus: string[] | null;
  /** `realfiles`: byte bound of the corpus; null: the workload's default. */
  corpusBytes: number | null;
  /** Run the resync-scaling scenario (`--no-resync`: skip it). */
  resync: boolean;
  help: boolean;
}

/** Defaults of a full run and of `--quick`. */
export const PRESETS = {
  full: { seconds: 30, bytes: 4 * 2 ** 30 },
  // 3 s: the default set (6 workloads x 4 modes) stays within 2 minutes.
  quick: { seconds: 3, bytes: 512 * 2 ** 20 },
} as const;

/** The `--help` text. */
export const USAGE = `deno task bench [options]: the refsync benchmark report

  --quick                 short runs (whole report < 2 min)
  --seconds N             load seconds per run (default ${PRESETS.full.seconds}, quick ${PRESETS.quick.seconds})
  --bytes SIZE            client byte budget per run, e.g. 1GiB (default 4GiB, quick 512MiB)
  --concurrency N         concurrent client requests (default: 8, small 32)
  --workloads a,b         among aligned,unaligned,duplicate,small,mixed,edited,realfiles (default all)
  --modes a,b             among refs,full,local,naive (default all)
  --data-dir DIR          where run data goes (default a temp dir; e.g. /dev/shm/refsync for tmpfs)
  --seed N                content seed (default 1)
  --cp-interval MS        passed to the appliances (default theirs)
  --cp-dirty-bytes SIZE   passed to the appliances (default theirs)
  --out DIR               where latest.json and latest.md go (default bench/results)
  --keep-data             leave the run data folders in place
  --no-resync             skip the resync scenario (the same changes on a volume 16x larger)
  --repo DIR              run the appliances from another checkout (A/B comparisons)
  --corpus DIR[,DIR]      realfiles: directories to read (default those of
                          ${DEFAULT_CORPUS.join(",")} that exist)
  --corpus-bytes SIZE     realfiles: at most this much of them (default ${
  CORPUS_BYTES.full / 2 ** 20
}MiB, quick ${CORPUS_BYTES.quick / 2 ** 20}MiB)`;

/** A bad option. */
export class BenchUsageError extends Error {}

/** The bytes of `flag`'s value `text` (`64MiB`, `1GiB`, `4096`, `1.5G`), more than 0. */
export function parseBytes(text: string, flag: string): number {
  const n = parseSize(text);
  if (n === null) throw new BenchUsageError(`${flag}: '${text}' is not a size (e.g. 512MiB, 2GiB)`);
  if (n <= 0) throw new BenchUsageError(`${flag}: '${text}' must be more than 0 bytes`);
  return n;
}

function positive(text: string, flag: string, integer: boolean): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new BenchUsageError(
      `${flag}: '${text}' is not a positive ${integer ? "integer" : "number"}`,
    );
  }
  return n;
}

/** The non-empty items of a comma-separated list (at least one). */
function items(text: string, flag: string): string[] {
  const out = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (out.length === 0) throw new BenchUsageError(`${flag}: empty list`);
  return out;
}

function list<T extends string>(text: string, flag: string, allowed: readonly T[]): T[] {
  const given = items(text, flag);
  for (const item of given) {
    if (!allowed.includes(item as T)) {
      throw new BenchUsageError(`${flag}: '${item}' is not one of ${allowed.join(", ")}`);
    }
  }
  // Report order, no duplicates.
  return allowed.filter((a) => given.includes(a));
}

/**
 * Parses the bench's arguments.
 *
 * @example
 * ```ts
 * parseBenchArgs(["--quick", "--modes", "refs,local"], ["aligned", "small"]);
 * ```
 */
export function parseBenchArgs(args: string[], workloadNames: readonly string[]): BenchOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean" },
        seconds: { type: "string" },
        bytes: { type: "string" },
        concurrency: { type: "string" },
        workloads: { type: "string" },
        modes: { type: "string" },
        "data-dir": { type: "string" },
        seed: { type: "string" },
        "cp-interval": { type: "string" },
        "cp-dirty-bytes": { type: "string" },
        out: { type: "string" },
        "keep-data": { type: "boolean" },
        "no-resync": { type: "boolean" },
        repo: { type: "string" },
        corpus: { type: "string" },
        "corpus-bytes": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    throw new BenchUsageError(e instanceof Error ? e.message : String(e));
  }
  const str = (k: string) => values[k] as string | undefined;
  const quick = values.quick === true;
  const preset = quick ? PRESETS.quick : PRESETS.full;
  const seedText = str("seed");
  const seed = seedText === undefined ? 1 : Number(seedText);
  if (!Number.isInteger(seed)) throw new BenchUsageError(`--seed: '${seedText}' is not an integer`);
  const cpInterval = str("cp-interval") ?? null;
  if (cpInterval !== null && !/^\d+$/.test(cpInterval)) {
    throw new BenchUsageError(`--cp-interval: '${cpInterval}' is not a whole number of ms`);
  }
  const cpDirty = str("cp-dirty-bytes") ?? null;
  if (cpDirty !== null) parseBytes(cpDirty, "--cp-dirty-bytes");
  return {
    quick,
    seconds: str("seconds") === undefined
      ? preset.seconds
      : positive(str("seconds")!, "--seconds", false),
    bytes: str("bytes") === undefined ? preset.bytes : parseBytes(str("bytes")!, "--bytes"),
    concurrency: str("concurrency") === undefined
      ? null
      : positive(str("concurrency")!, "--concurrency", true),
    workloads: str("workloads") === undefined
      ? [...workloadNames]
      : list(str("workloads")!, "--workloads", workloadNames),
    modes: str("modes") === undefined ? [...MODES] : list(str("modes")!, "--modes", MODES),
    dataDir: str("data-dir") ?? null,
    seed: seed >>> 0,
    cpInterval,
    cpDirtyBytes: cpDirty,
    outDir: str("out") ?? new URL("../results", import.meta.url).pathname,
    keepData: values["keep-data"] === true,
    repo: str("repo") ?? null,
    corpus: str("corpus") === undefined ? null : items(str("corpus")!, "--corpus"),
    corpusBytes: str("corpus-bytes") === undefined
      ? null
      : parseBytes(str("corpus-bytes")!, "--corpus-bytes"),
    resync: values["no-resync"] !== true,
    help: values.help === true,
  };
}

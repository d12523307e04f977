/**
 * What a workload is: a deterministic sequence of PUTs (whole objects or
 * ranged writes) plus an optional, unmeasured setup.
 *
 * @module
 */

/** One client PUT. */
export interface Op {
  /** Object key (ASCII, no characters that need escaping). */
  key: string;
  /** Body bytes: the client bytes this op writes. */
  bytes: number;
  /** A ranged write at this object offset (`Content-Range: bytes a-b/*`); absent: whole object. */
  offset?: number;
  /**
   * Builds the body when the op is sent, so that only in-flight bodies are
   * in memory. A stream is sent chunked (no Content-Length).
   */
  body(): Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array<ArrayBuffer>>;
}

/** A benchmark workload. */
export interface Workload {
  readonly name: string;
  /** One line for the report: what it writes. */
  readonly summary: string;
  /** Concurrency when `--concurrency` is not given. */
  readonly concurrency: number;
  /** Ops run (and committed by a CP) before the measurement starts. */
  setup(): Op[];
  /**
   * The next measured op, a pure function of the seed (and, for `realfiles`, of the corpus);
   * null once a finite workload is done (the run then ends early).
   */
  next(): Op | null;
  /**
   * The ops end (next() returns null) and a run sends them all, up to `--bytes`, whatever
   * `--seconds` says: a corpus uploaded twice means nothing when cut before the second time.
   */
  readonly finite?: boolean;
  /** Set when the workload cannot run here (e.g. no corpus): why; the bench skips it. */
  readonly skip?: string;
}

/** How to build a workload. */
export interface WorkloadOptions {
  seed: number;
  /** Smaller setups for `--quick`. */
  quick: boolean;
  /** `realfiles`: the directories to read (default {@link DEFAULT_CORPUS}). */
  corpus?: readonly string[];
  /** `realfiles`: at most this many bytes of them (default {@link CORPUS_BYTES}). */
  corpusBytes?: number;
}

/** The directories `realfiles` reads unless told otherwise (those that exist). */
export const DEFAULT_CORPUS: readonly string[] = [
  "/usr/share/doc",
  "/usr/include",
  "/usr/share/man",
  "/usr/lib/python3",
];

/**
 * Default byte bound of the `realfiles` corpus, and with `--quick`. Small
 * files make it slow (about 6 MiB/s mirrored here): 128 MiB, sent twice, is
 * about 45 s per mode.
 */
export const CORPUS_BYTES = { full: 128 * 2 ** 20, quick: 16 * 2 ** 20 } as const;

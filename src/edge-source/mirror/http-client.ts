/**
 * The replication client over HTTP: `GET /v1/repl/state`,
 * `POST /v1/repl/log/reset`, `POST /v1/repl/log`, `POST /v1/repl/cp`,
 * `GET /v1/repl/verify`, `POST /v1/repl/repair`, `POST /v1/repl/catch-up/begin`,
 * `POST /v1/repl/catch-up`, each with the pair token.
 * Log batches and CP sync parts go compressed (`src/protocol/link-compress`);
 * the bytes sent, and their bytes before compression, are counted into `wire`.
 * Every request has a deadline (`timeoutMs`, by body size): a destination that
 * accepts and never answers (a silent partition) is `unavailable` then, as one
 * that refuses the connection, never a forwarder hung for ever.
 *
 * Log batches go on the destination's log stream when its handshake announces
 * one and `--dest` is `http://` (./log-stream-client.ts: the same request and
 * answer without HTTP); when the stream cannot be opened they go as HTTP
 * requests, and the first handshake {@link STREAM_RETRY_MS} later tries again.
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { authHeader } from "../../protocol/auth/mod.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import type { CatchUpBegin, DestState, LogReset } from "../../protocol/handshake/mod.ts";
import {
  type DigestReader,
  readDigestStream,
  type RepairAnswer,
} from "../../protocol/verify/mod.ts";
import {
  type EncodedBody,
  LinkEncoder,
  LONG_WINDOW_LOG,
  RECEIVE_MS_HEADER,
  WINDOW_LOG,
} from "../../protocol/link-compress/mod.ts";
import { newWireStats, type WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Random } from "../../runtime/random.ts";
import type { CatchUpKind, CpPartAnswer, ReplicaClient } from "./replica-client.ts";
import { type LogChannel, LogStreamClient } from "./log-stream-client.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";

/** A log stream that could not be opened is tried again after this long (ms); HTTP meanwhile. */
export const STREAM_RETRY_MS = 60_000;
/** Longest wait for a log stream to open (ms): a firewall that drops the SYN costs this once. */
const STREAM_OPEN_MS = 3000;

/** Sends one request (global `fetch` by default; the simulator's network in `sim/`). */
export type Fetch = (request: Request) => Promise<Response>;

/**
 * A {@link ReplicaClient} speaking HTTP to the destination at `url`.
 *
 * @example
 * ```ts
 * import { HttpReplicaClient } from "./http-client.ts";
 * import { newWireStats } from "../../protocol/cp-sync/stats.ts";
 * const wire = newWireStats(); // logBytes, cpSyncBytes: as sent
 * const client = new HttpReplicaClient({ url: "http://127.0.0.1:8081", token: "secret", wire });
 * const state = await client.state();
 * console.log(state.cp, state.lastLsn);
 * ```
 */
export class HttpReplicaClient implements ReplicaClient {
  readonly url: string;
  readonly #token: string;
  readonly #fetch: Fetch;
  readonly #wire: WireStats;
  readonly #encoder: LinkEncoder;
  readonly #timeoutMs: ((bodyBytes: number) => number) | null;
  readonly #clock: Clock;
  /** The destination's handshake said it decodes a long window (a batch that repeats itself). */
  #longWindow = false;
  readonly #logStream: number | "off" | null;
  readonly #log: Logger;
  /** The log stream's port from the last handshake (null: none, or it failed to open since). */
  #streamPort: number | null = null;
  #stream: LogChannel | null = null;
  readonly #openChannel: ((timeoutMs: number) => Promise<LogChannel>) | null;
  /** The last stream failed to open: not tried again before this (monotonic ms). */
  #streamRetryAt = -Infinity;
  /** Settles when the last batch is encoded and on its way (see {@link sendFrames}). */
  #sending: Promise<void> = Promise.resolve();

  constructor(opts: {
    url: string;
    token: string;
    fetch?: Fetch;
    /** Counts the bytes sent, and before compression. */
    wire?: WireStats;
    /** Picks the link epochs' ids. */
    random?: Random;
    /**
     * Deadline (ms) of a request with a body of this many bytes, its answer
     * read. Default none (the simulator's link times out by itself).
     */
    timeoutMs?: (bodyBytes: number) => number;
    /** The deadlines' timers (the simulator's). Default the system clock. */
    clock?: Clock;
    /**
     * The log stream: null (default) the port the destination announces; a
     * port of the --dest host instead; "off" none (every batch an HTTP request).
     */
    logStream?: number | "off" | null;
    /** Where a stream that cannot be opened is reported. Default the root logger. */
    logger?: Logger;
    /**
     * Opens the log stream instead of a TCP connection, whatever the
     * handshake announces (the simulator's network). `logStream: "off"` still
     * turns it off.
     */
    openStream?: (timeoutMs: number) => Promise<LogChannel>;
  }) {
    this.url = opts.url;
    this.#token = opts.token;
    this.#fetch = opts.fetch ?? ((request) => fetch(request));
    this.#wire = opts.wire ?? newWireStats();
    this.#encoder = new LinkEncoder({ random: opts.random });
    this.#timeoutMs = opts.timeoutMs ?? null;
    this.#clock = opts.clock ?? systemClock;
    this.#logStream = opts.logStream ?? null;
    this.#log = opts.logger ?? rootLogger();
    this.#openChannel = opts.openStream ?? null;
  }

  async state(): Promise<DestState> {
    // The handshake of a (re)connect: the log stream starts a new epoch with it.
    this.#encoder.restart();
    this.#closeStream();
    const state = await this.look();
    this.#longWindow = (state.linkWindowLog ?? WINDOW_LOG) >= LONG_WINDOW_LOG;
    // Only where HTTP is as exposed as TCP: the stream would bypass an https:// link's TLS.
    const plain = new URL(this.url).protocol === "http:";
    const announced = this.#openChannel ? 0 : state.logStreamPort ?? null;
    const backingOff = this.#clock.monotonic() < this.#streamRetryAt;
    this.#streamPort = !plain || this.#logStream === "off" || announced === null || backingOff
      ? null
      : this.#logStream ?? announced;
    return state;
  }

  /** The state as {@link state} asks it, leaving the link's epoch and log stream as they are. */
  look(): Promise<DestState> {
    return this.#request("/v1/repl/state", {}, 0, (res) => json<DestState>(res));
  }

  /** Closes the log stream, if one is open (a later handshake may open another). */
  close(): void {
    this.#closeStream();
    this.#streamPort = null;
  }

  #closeStream(): void {
    this.#stream?.close();
    this.#stream = null;
  }

  /** The stream a batch goes on (counted), or null: as an HTTP request. */
  async #streamForBatch(): Promise<LogChannel | null> {
    const stream = await this.#openStream();
    if (stream) this.#wire.logStreamBatches++;
    return stream;
  }

  /** The open log stream, opened now if the last handshake announced one; null: use HTTP. */
  async #openStream(): Promise<LogChannel | null> {
    if (this.#stream && !this.#stream.closed) return this.#stream;
    this.#stream = null;
    const port = this.#streamPort;
    if (port === null) return null;
    const host = new URL(this.url).hostname.replace(/^\[(.*)\]$/, "$1");
    try {
      const ms = Math.min(STREAM_OPEN_MS, this.#timeoutMs?.(0) ?? STREAM_OPEN_MS);
      this.#stream = this.#openChannel
        ? await this.#openChannel(ms)
        : await LogStreamClient.open(host, port, this.#token, ms);
      return this.#stream;
    } catch (e) {
      // Not reachable (a firewall, a port mapping: --dest-log-port): HTTP for a while.
      this.#streamPort = null;
      this.#streamRetryAt = this.#clock.monotonic() + STREAM_RETRY_MS;
      this.#log.warn("mirror.log_stream_unavailable", {
        destination: this.url,
        port,
        cause: errorMessage(e),
      });
      return null;
    }
  }

  resetLog(body: LogReset): Promise<DestState> {
    return this.#postJson("/v1/repl/log/reset", body);
  }

  async sendFrames(frames: Uint8Array, opts: { repeats?: boolean } = {}): Promise<number> {
    // Batches are encoded (the epoch's sequence) and put on the wire in call order. On the log
    // stream the next may follow before this one's answer; as HTTP requests they go one at a time
    // (two would arrive in either order, and the destination refuses a batch of an epoch while
    // it decodes another).
    const before = this.#sending;
    let release!: () => void;
    this.#sending = new Promise((resolve) => release = resolve);
    let answer: Promise<number>;
    try {
      await before;
      const encoded = await this.#encoder.stream(frames, opts.repeats === true && this.#longWindow);
      this.#wire.linkLevel = this.#encoder.level;
      this.#wire.logBytes += encoded.body.length;
      this.#wire.logBytesRaw += frames.length;
      const stream = await this.#streamForBatch();
      answer = this.#request(
        "/v1/repl/log",
        octets(encoded),
        encoded.body.length,
        async (res) => {
          const lastLsn = (await json<{ lastLsn: number }>(res)).lastLsn;
          // The log stream's answers say how long the body took to arrive: the link's speed.
          const ms = res.headers.get(RECEIVE_MS_HEADER);
          if (ms !== null) this.#encoder.linkTimed(encoded.body.length, Number(ms));
          return lastLsn;
        },
        stream,
      );
      if (stream === null) await answer;
    } catch (e) {
      // Lost, refused or answered lost: the destination's context may differ from ours now.
      this.#encoder.restart();
      throw e;
    } finally {
      release();
    }
    try {
      return await answer;
    } catch (e) {
      this.#encoder.restart();
      throw e;
    }
  }

  /** True when the next batches go on the log stream, where they may follow each other unanswered. */
  get pipelined(): boolean {
    return this.#streamPort !== null;
  }

  sendCpPart(cp: number, part: number, last: boolean, bytes: Uint8Array): Promise<CpPartAnswer> {
    return this.#sendPart("/v1/repl/cp", "cpSyncBytes", cp, part, last, bytes);
  }

  beginCatchUp(body: CatchUpBegin): Promise<DestState> {
    return this.#postJson("/v1/repl/catch-up/begin", body);
  }

  sendCatchUpPart(
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
    kind: CatchUpKind,
  ): Promise<CpPartAnswer> {
    const counter = kind === "baseline" ? "baselineBytes" : "resyncBytes";
    return this.#sendPart("/v1/repl/catch-up", counter, cp, part, last, bytes);
  }

  /** One part of a CP sync or catch-up stream, compressed on its own, counted as sent. */
  async #sendPart(
    path: string,
    counter: "cpSyncBytes" | "baselineBytes" | "resyncBytes",
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
  ): Promise<CpPartAnswer> {
    const encoded = await this.#encoder.single(bytes);
    this.#wire[counter] += encoded.body.length;
    if (counter === "cpSyncBytes") this.#wire.cpSyncBytesRaw += bytes.length;
    return await this.#request(
      `${path}?cp=${cp}&part=${part}&last=${last ? 1 : 0}`,
      octets(encoded),
      encoded.body.length,
      (res) => this.#cpAnswer(res),
    );
  }

  #postJson(path: string, body: unknown): Promise<DestState> {
    const text = JSON.stringify(body);
    return this.#request(
      path,
      { method: "POST", body: text, headers: { "Content-Type": "application/json" } },
      text.length,
      (res) => json<DestState>(res),
    );
  }

  verifyDigests(cp: number): Promise<DigestReader> {
    // The deadline covers the answer's head; the stream itself is bounded by the reader's pulls.
    return this.#request(`/v1/repl/verify?cp=${cp}`, {}, 0, async (res) => {
      if (!res.ok) return await json<never>(res); // a refusal: it throws
      if (res.body === null) throw unreachable(this.url, "an empty digest stream");
      try {
        return await readDigestStream(res.body);
      } catch (e) {
        throw unreachable(this.url, e);
      }
    });
  }

  repair(cp: number, bytes: Uint8Array): Promise<RepairAnswer> {
    return this.#request(
      `/v1/repl/repair?cp=${cp}`,
      {
        method: "POST",
        body: bytes as Uint8Array<ArrayBuffer>,
        headers: { "Content-Type": "application/octet-stream" },
      },
      bytes.length,
      (res) => json<RepairAnswer>(res),
    );
  }

  async #cpAnswer(res: Response): Promise<CpPartAnswer> {
    if (res.status === 202) {
      await res.body?.cancel();
      return { status: 202 };
    }
    let body: { need?: unknown; message?: unknown } = {};
    try {
      body = await res.json();
    } catch (e) {
      if (res.ok) throw unreachable(this.url, e);
    }
    return {
      status: res.status,
      need: Array.isArray(body.need) ? body.need as number[] : undefined,
      message: typeof body.message === "string" ? body.message : res.statusText,
    };
  }

  /**
   * Sends one request and reads its answer with `read`, both within the
   * deadline for `bodyBytes`; a transport failure or the deadline is
   * `unavailable`.
   */
  async #request<T>(
    path: string,
    init: RequestInit,
    bodyBytes: number,
    read: (res: Response) => Promise<T>,
    stream: LogChannel | null = null,
  ): Promise<T> {
    const ms = this.#timeoutMs?.(bodyBytes) ?? null;
    const abort = new AbortController();
    const timer = ms === null ? undefined : this.#clock.setTimeout(() => abort.abort(), ms);
    try {
      let res: Response;
      try {
        // The stream is authenticated already: its requests carry no token.
        res = stream
          ? await stream.send(
            path,
            new Headers(init.headers),
            init.body as Uint8Array,
            abort.signal,
          )
          : await this.#fetch(
            new Request(new URL(path, this.url), {
              ...init,
              headers: { ...authHeader(this.#token), ...(init.headers ?? {}) },
              signal: abort.signal,
            }),
          );
      } catch (e) {
        throw unreachable(this.url, abort.signal.aborted ? noAnswer(ms) : e);
      }
      try {
        return await read(res);
      } catch (e) {
        if (!abort.signal.aborted) throw e;
        throw unreachable(this.url, noAnswer(ms));
      }
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }
}

/** A POST of an encoded body. */
function octets({ body, headers }: EncodedBody): RequestInit {
  return {
    method: "POST",
    body,
    headers: { "Content-Type": "application/octet-stream", ...headers },
  };
}

function noAnswer(ms: number | null): string {
  return `no answer within ${ms} ms`;
}

function unreachable(url: string, e: unknown): RefsyncError {
  return new RefsyncError("unavailable", `destination ${url} unreachable: ${errorMessage(e)}`);
}

/** The JSON body of `res`, or the refusal it is. */
async function json<T>(res: Response): Promise<T> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text.slice(0, 200) };
  }
  if (res.status === 401) {
    throw new RefsyncError(
      "unauthorized",
      "the destination refused the pair token (401): start this source with the destination's " +
        "--token (kept in the destination's DATA/pair-token)",
    );
  }
  if (!res.ok) {
    const message = (body as { message?: string }).message ?? res.statusText;
    // A 4xx is the destination refusing us (retried with backoff); a 5xx is transient.
    throw new RefsyncError(
      res.status < 500 ? "conflict" : "unavailable",
      `destination answered ${res.status}: ${message}`,
    );
  }
  return body as T;
}

/**
 * The replication client over HTTP: `GET /v1/repl/state`,
 * `POST /v1/repl/log/reset`, `POST /v1/repl/log`, `POST /v1/repl/cp`, each
 * with the pair token. Every request has a deadline (`timeoutMs`, by body
 * size): a destination that accepts and never answers (a silent partition) is
 * `unavailable` then, as one that refuses the connection, never a forwarder
 * hung for ever.
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { authHeader } from "../../protocol/auth/mod.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";
import type { DestState, LogReset } from "../../protocol/handshake/mod.ts";
import type { CpPartAnswer, ReplicaClient } from "./replica-client.ts";

/** Sends one request (global `fetch` by default; the simulator's network in `sim/`). */
export type Fetch = (request: Request) => Promise<Response>;

/**
 * A {@link ReplicaClient} speaking HTTP to the destination at `url`.
 *
 * @example
 * ```ts
 * import { HttpReplicaClient } from "./http-client.ts";
 * const client = new HttpReplicaClient({ url: "http://127.0.0.1:8081", token: "secret" });
 * const state = await client.state();
 * console.log(state.cp, state.lastLsn);
 * ```
 */
export class HttpReplicaClient implements ReplicaClient {
  readonly url: string;
  readonly #token: string;
  readonly #fetch: Fetch;
  readonly #timeoutMs: ((bodyBytes: number) => number) | null;
  readonly #clock: Clock;

  constructor(opts: {
    url: string;
    token: string;
    fetch?: Fetch;
    /**
     * Deadline (ms) of a request with a body of this many bytes, its answer
     * read. Default none (the simulator's link times out by itself).
     */
    timeoutMs?: (bodyBytes: number) => number;
    /** The deadlines' timers (the simulator's). Default the system clock. */
    clock?: Clock;
  }) {
    this.url = opts.url;
    this.#token = opts.token;
    this.#fetch = opts.fetch ?? ((request) => fetch(request));
    this.#timeoutMs = opts.timeoutMs ?? null;
    this.#clock = opts.clock ?? systemClock;
  }

  state(): Promise<DestState> {
    return this.#request("/v1/repl/state", {}, 0, (res) => json<DestState>(res));
  }

  resetLog(body: LogReset): Promise<DestState> {
    const text = JSON.stringify(body);
    return this.#request(
      "/v1/repl/log/reset",
      {
        method: "POST",
        body: text,
        headers: { "Content-Type": "application/json" },
      },
      text.length,
      (res) => json<DestState>(res),
    );
  }

  sendFrames(frames: Uint8Array): Promise<number> {
    return this.#request(
      "/v1/repl/log",
      {
        method: "POST",
        body: frames as Uint8Array<ArrayBuffer>,
        headers: { "Content-Type": "application/octet-stream" },
      },
      frames.length,
      async (res) => (await json<{ lastLsn: number }>(res)).lastLsn,
    );
  }

  sendCpPart(
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
  ): Promise<CpPartAnswer> {
    return this.#request(
      `/v1/repl/cp?cp=${cp}&part=${part}&last=${last ? 1 : 0}`,
      {
        method: "POST",
        body: bytes as Uint8Array<ArrayBuffer>,
        headers: { "Content-Type": "application/octet-stream" },
      },
      bytes.length,
      (res) => this.#cpAnswer(res),
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
  ): Promise<T> {
    const headers = { ...authHeader(this.#token), ...(init.headers ?? {}) };
    const ms = this.#timeoutMs?.(bodyBytes) ?? null;
    const abort = new AbortController();
    const timer = ms === null ? undefined : this.#clock.setTimeout(() => abort.abort(), ms);
    const request = new Request(new URL(path, this.url), {
      ...init,
      headers,
      signal: abort.signal,
    });
    try {
      let res: Response;
      try {
        res = await this.#fetch(request);
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

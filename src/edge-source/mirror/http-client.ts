/**
 * The replication client over HTTP: `GET /v1/repl/state`,
 * `POST /v1/repl/log/reset`, `POST /v1/repl/log`, `POST /v1/repl/cp`, each
 * with the pair token.
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { authHeader } from "../../protocol/auth/mod.ts";
import type { CatchUpBegin, DestState, LogReset } from "../../protocol/handshake/mod.ts";
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

  constructor(opts: { url: string; token: string; fetch?: Fetch }) {
    this.url = opts.url;
    this.#token = opts.token;
    this.#fetch = opts.fetch ?? ((request) => fetch(request));
  }

  async state(): Promise<DestState> {
    return await json<DestState>(await this.#request("/v1/repl/state"));
  }

  resetLog(body: LogReset): Promise<DestState> {
    return this.#postJson("/v1/repl/log/reset", body);
  }

  async sendFrames(frames: Uint8Array): Promise<number> {
    const res = await this.#request("/v1/repl/log", {
      method: "POST",
      body: frames as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": "application/octet-stream" },
    });
    return (await json<{ lastLsn: number }>(res)).lastLsn;
  }

  sendCpPart(cp: number, part: number, last: boolean, bytes: Uint8Array): Promise<CpPartAnswer> {
    return this.#sendPart("/v1/repl/cp", cp, part, last, bytes);
  }

  beginCatchUp(body: CatchUpBegin): Promise<DestState> {
    return this.#postJson("/v1/repl/catch-up/begin", body);
  }

  async #postJson(path: string, body: unknown): Promise<DestState> {
    return await json<DestState>(
      await this.#request(path, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" },
      }),
    );
  }

  sendCatchUpPart(
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
  ): Promise<CpPartAnswer> {
    return this.#sendPart("/v1/repl/catch-up", cp, part, last, bytes);
  }

  async #sendPart(
    path: string,
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
  ): Promise<CpPartAnswer> {
    const res = await this.#request(`${path}?cp=${cp}&part=${part}&last=${last ? 1 : 0}`, {
      method: "POST",
      body: bytes as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": "application/octet-stream" },
    });
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

  async #request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = { ...authHeader(this.#token), ...(init.headers ?? {}) };
    try {
      return await this.#fetch(new Request(new URL(path, this.url), { ...init, headers }));
    } catch (e) {
      throw unreachable(this.url, e);
    }
  }
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

/**
 * The source's end of the log stream (src/protocol/log-stream): one TCP
 * connection to the destination, authenticated by the pair token's MAC of
 * the destination's nonce, that carries log batches one at a time and gives
 * back each answer as a `Response`, as `fetch` would.
 *
 * Any failure closes the connection for good (the caller opens a new one
 * after its next handshake): a stream that lost its place in a message is
 * not reused.
 *
 * @example
 * ```ts
 * import { LogStreamClient } from "./log-stream-client.ts";
 * declare const port: number;
 * const stream = await LogStreamClient.open("127.0.0.1", port, "secret", 5000);
 * const res = await stream.send("/v1/repl/log", new Headers(), new Uint8Array(0));
 * console.log(res.status);
 * stream.close();
 * ```
 *
 * @module
 */
import {
  ACCEPTED,
  decodeHello,
  encodeRequestHead,
  HELLO_BYTES,
  readAnswer,
  readExactly,
  StreamError,
  streamMac,
  writeAll,
} from "../../protocol/log-stream/mod.ts";
import { deadline } from "../../runtime/clock.ts";

/** See the module documentation. */
export class LogStreamClient {
  readonly #conn: Deno.Conn;
  #closed = false;
  #busy = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * Connects to `host:port` and authenticates with `token`, within `timeoutMs`.
   * @throws when it cannot (refused, no answer, not a log stream, not accepted).
   */
  static async open(
    host: string,
    port: number,
    token: string,
    timeoutMs: number,
  ): Promise<LogStreamClient> {
    let conn: Deno.Conn | null = null;
    let late = false;
    const close = () => {
      try {
        conn?.close();
      } catch { /* closed */ }
    };
    const opening = (async () => {
      const tcp = await Deno.connect({ hostname: host, port });
      conn = tcp;
      // Connected after the deadline: nobody waits for this stream any more.
      if (late) throw new StreamError("connected too late");
      tcp.setNoDelay(true); // an answer is small and awaited: no Nagle delay
      const nonce = decodeHello((await readExactly(tcp, HELLO_BYTES))!);
      await writeAll(tcp, streamMac(token, nonce));
      const verdict = await readExactly(tcp, 1, true);
      if (verdict === null || verdict[0] !== ACCEPTED) {
        throw new StreamError("the destination did not accept the log stream (pair token?)");
      }
      return new LogStreamClient(tcp);
    })();
    try {
      return await deadline(opening, timeoutMs, () => {
        late = true;
        close();
        return new StreamError(`no log stream from ${host}:${port} within ${timeoutMs} ms`);
      });
    } catch (e) {
      close();
      throw e;
    }
  }

  /** True once it failed or was closed: it carries nothing more. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends `POST path` with `headers` and `body`, and reads the answer;
   * `signal` aborting closes the stream (the request's fate is unknown).
   */
  async send(
    path: string,
    headers: Headers,
    body: Uint8Array,
    signal?: AbortSignal,
  ): Promise<Response> {
    if (this.#closed) throw new StreamError("the log stream is closed");
    if (this.#busy) throw new Error("invariant: one request at a time on the log stream");
    this.#busy = true;
    const abort = () => this.close();
    signal?.addEventListener("abort", abort);
    try {
      await writeAll(this.#conn, encodeRequestHead("POST", path, headers, body.length));
      await writeAll(this.#conn, body);
      const answer = await readAnswer(this.#conn);
      return new Response(answer.body as Uint8Array<ArrayBuffer>, {
        status: Number(answer.line),
        headers: answer.headers,
      });
    } catch (e) {
      this.close();
      throw e;
    } finally {
      this.#busy = false;
      signal?.removeEventListener("abort", abort);
    }
  }

  /** Closes the connection. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

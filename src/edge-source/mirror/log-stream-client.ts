/**
 * The source's end of the log stream (src/protocol/log-stream): one TCP
 * connection to the destination, authenticated by the pair token's MAC of
 * the destination's nonce, that carries log batches and gives back each
 * answer as a `Response`, as `fetch` would. Requests may follow each other
 * before their answers: they are written in call order, and the answers,
 * which come in the same order, are read through a buffer (an answer's
 * fields cost one read).
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
  BufferedReader,
  decodeHello,
  encodeRequestHead,
  HELLO_BYTES,
  InOrder,
  readAnswer,
  readExactly,
  StreamError,
  streamMac,
  writeAll,
} from "../../protocol/log-stream/mod.ts";
import { deadline } from "../../runtime/clock.ts";

/**
 * A log stream as the replica client uses it: requests answered in the order
 * sent, and once it fails, closed for good. {@link LogStreamClient} is the
 * TCP one; the simulator's network has one in memory (./memory-client.ts).
 */
export interface LogChannel {
  /** True once it failed or was closed: it carries nothing more. */
  readonly closed: boolean;
  /** Sends `POST path` after the requests before it; its answer comes after theirs. */
  send(path: string, headers: Headers, body: Uint8Array, signal?: AbortSignal): Promise<Response>;
  /** Closes it. Idempotent. */
  close(): void;
}

/** See the module documentation. */
export class LogStreamClient implements LogChannel {
  readonly #conn: Deno.Conn;
  /** Answers are read through it: an answer's four fields cost one read, not four. */
  readonly #reader: BufferedReader;
  #closed = false;
  /** Requests written in call order, their answers read in the same order. */
  readonly #order = new InOrder();

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reader = new BufferedReader(conn);
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
   * Sends `POST path` with `headers` and `body` after the requests sent
   * before it, and reads its answer after theirs; `signal` aborting closes
   * the stream (the fate of every request on it is unknown).
   */
  send(
    path: string,
    headers: Headers,
    body: Uint8Array,
    signal?: AbortSignal,
  ): Promise<Response> {
    if (this.#closed) return Promise.reject(new StreamError("the log stream is closed"));
    const abort = () => this.close();
    signal?.addEventListener("abort", abort);
    return this.#order.run(async () => {
      await writeAll(this.#conn, encodeRequestHead("POST", path, headers, body.length));
      await writeAll(this.#conn, body);
    }, () => readAnswer(this.#reader)).then(
      (answer) =>
        new Response(answer.body as Uint8Array<ArrayBuffer>, {
          status: Number(answer.line),
          headers: answer.headers,
        }),
      (e) => {
        this.close();
        throw e;
      },
    ).finally(() => signal?.removeEventListener("abort", abort));
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

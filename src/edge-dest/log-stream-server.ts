/**
 * The destination's end of the log stream (src/protocol/log-stream): a TCP
 * listener that authenticates a source by the pair token's MAC of a fresh
 * nonce, then hands each request it carries to the appliance's own handler
 * as a `Request` (with the pair token, as HTTP would carry it), so a batch
 * meets exactly the routes, checks and answers of `POST /v1/repl/log`.
 *
 * One source at a time: an authenticated connection replaces the one before
 * (the source reconnected). A connection that does not authenticate within
 * `helloTimeoutMs`, or breaks the format, is closed and logged; a body that
 * stalls longer than `bodyIdleTimeoutMs` likewise. At most
 * {@link MAX_UNAUTHENTICATED} connections wait for their hello's answer at
 * once: more are closed on accept, so a flood costs a bounded set of sockets.
 *
 * @example
 * ```ts
 * const server = LogStreamServer.listen({
 *   host: "127.0.0.1",
 *   port: 0,
 *   token: () => "secret",
 *   handler: () => new Response("{}"),
 * });
 * console.log(server.port);
 * await server.close();
 * ```
 *
 * @module
 */
import {
  ACCEPTED,
  asHttpRequest,
  BufferedReader,
  encodeAnswer,
  encodeHello,
  LOG_PATH,
  MAC_BYTES,
  macMatches,
  NONCE_BYTES,
  readExactly,
  readRequest,
  StreamError,
  type StreamMessage,
  type StreamReader,
  writeAll,
} from "../protocol/log-stream/mod.ts";
import { errorMessage } from "../errors/mod.ts";
import { RECEIVE_MS_HEADER } from "../protocol/link-compress/mod.ts";
import { deadline } from "../runtime/clock.ts";
import { listenError } from "../http/serve.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";

/** Connections accepted and not yet authenticated, at most. */
export const MAX_UNAUTHENTICATED = 16;

/** How the server is started. */
export interface LogStreamServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** The pair token, read per connection. */
  token: () => string;
  /** The appliance's request handler (the one its HTTP server calls). */
  handler: (
    request: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ) => Response | Promise<Response>;
  /** Called for each request the stream carries (a counter). */
  onRequest?: () => void;
  /** A connection that has not authenticated by then is closed. Default 5000 ms. */
  helloTimeoutMs?: number;
  /** A body that stalls this long between reads closes its connection. Default 30000 ms. */
  bodyIdleTimeoutMs?: number;
  logger?: Logger;
}

/** See the module documentation. */
export class LogStreamServer {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #opts: LogStreamServerOptions;
  readonly #log: Logger;
  readonly #conns = new Set<Deno.Conn>();
  #current: Deno.Conn | null = null;
  #unauthenticated = 0;
  readonly #serving: Promise<void>;
  readonly #handling = new Set<Promise<void>>();

  private constructor(
    listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
    opts: LogStreamServerOptions,
  ) {
    this.#listener = listener;
    this.#opts = opts;
    this.#log = opts.logger ?? rootLogger();
    this.#serving = this.#accept();
  }

  /** Listens on `host:port`. @throws when the port is taken (the message names it). */
  static listen(opts: LogStreamServerOptions): LogStreamServer {
    try {
      return new LogStreamServer(Deno.listen({ hostname: opts.host, port: opts.port }), opts);
    } catch (e) {
      throw listenError(e, opts.host, opts.port, {
        purpose: "the log stream",
        instead: "another --repl-port, or off",
      });
    }
  }

  /** The port it listens on. */
  get port(): number {
    return this.#listener.addr.port;
  }

  /** Stops listening and closes every connection; waits for the requests under way. */
  async close(): Promise<void> {
    this.#listener.close();
    for (const c of this.#conns) closeQuietly(c);
    await this.#serving;
    await Promise.allSettled([...this.#handling]);
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#unauthenticated >= MAX_UNAUTHENTICATED) {
          closeQuietly(conn);
          continue;
        }
        this.#conns.add(conn);
        const p = this.#serve(conn).finally(() => {
          this.#conns.delete(conn);
          this.#handling.delete(p);
          if (this.#current === conn) this.#current = null;
          closeQuietly(conn);
        });
        this.#handling.add(p);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const peer = `${(conn.remoteAddr as Deno.NetAddr).hostname}:${
      (conn.remoteAddr as Deno.NetAddr).port
    }`;
    try {
      this.#unauthenticated++;
      let authenticated: boolean;
      try {
        authenticated = await this.#authenticate(conn, peer);
      } finally {
        this.#unauthenticated--;
      }
      if (!authenticated) return;
      if (this.#current) closeQuietly(this.#current); // the source reconnected: the newest wins
      this.#current = conn;
      this.#log.info("log_stream.opened", { peer });
      const timed = idleTimed(conn, this.#opts.bodyIdleTimeoutMs ?? 30_000);
      const reader = new BufferedReader(timed);
      const info: Deno.ServeHandlerInfo<Deno.NetAddr> = {
        remoteAddr: conn.remoteAddr as Deno.NetAddr,
        completed: Promise.resolve(),
      };
      while (true) {
        // Waiting for the next request is no stall; once its first bytes are in, a pause is.
        timed.idle = reader.buffered === 0;
        const message = await readRequest(reader);
        if (message === null) break;
        const answer = await this.#answer(message, info);
        await writeAll(conn, answer);
      }
      this.#log.info("log_stream.closed", { peer });
    } catch (e) {
      const expected = e instanceof StreamError || e instanceof Deno.errors.BadResource ||
        e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
        e instanceof Deno.errors.Interrupted;
      this.#log.warn("log_stream.closed", {
        peer,
        cause: errorMessage(e),
        ...(expected ? {} : { unexpected: true }),
      });
    }
  }

  /** The hello, the MAC; false (logged) when the peer is not our source. */
  async #authenticate(conn: Deno.Conn, peer: string): Promise<boolean> {
    const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    await writeAll(conn, encodeHello(nonce));
    const mac = await deadline(
      readExactly(conn, MAC_BYTES, true),
      this.#opts.helloTimeoutMs ?? 5000,
      () => new StreamError("no answer to the hello"),
    ).catch((e: Error) => e);
    const reason = mac instanceof Error
      ? mac.message
      : mac === null
      ? "closed"
      : macMatches(this.#opts.token(), nonce, mac)
      ? null
      : "wrong";
    if (reason !== null) {
      this.#log.warn("auth.refused", { token: "pair", reason, peer, path: "log stream" });
      return false;
    }
    await writeAll(conn, new Uint8Array([ACCEPTED]));
    return true;
  }

  async #answer(
    { line, headers, body, receiveMs }: StreamMessage,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Uint8Array> {
    if (line !== `POST ${LOG_PATH}`) {
      const text = JSON.stringify({
        error: "not_found",
        message: `the log stream carries POST ${LOG_PATH} only, not ${
          JSON.stringify(line.slice(0, 80))
        }`,
      });
      return encodeAnswer(
        404,
        new Headers({ "content-type": "application/json" }),
        new TextEncoder().encode(text),
      );
    }
    this.#opts.onRequest?.();
    const request = asHttpRequest(headers, body, this.#opts.token());
    const response = await this.#opts.handler(request, info);
    const answerHeaders = new Headers(response.headers);
    // How long the link took to carry the request: the source's level policy measures by it.
    answerHeaders.set(RECEIVE_MS_HEADER, receiveMs!.toFixed(2));
    return encodeAnswer(
      response.status,
      answerHeaders,
      new Uint8Array(await response.arrayBuffer()),
    );
  }
}

/**
 * A reader whose reads fail (and close `conn`) after `ms` without a byte,
 * except while `idle`: between requests. The first bytes an idle read gets
 * start a request, so it is not idle after them.
 */
function idleTimed(conn: Deno.Conn, ms: number): StreamReader & { idle: boolean } {
  const r = {
    idle: true,
    async read(p: Uint8Array): Promise<number | null> {
      if (r.idle) {
        const n = await conn.read(p);
        r.idle = false;
        return n;
      }
      return await deadline(conn.read(p), ms, () => {
        closeQuietly(conn);
        return new StreamError(`a request stalled for ${ms} ms`);
      });
    },
  };
  return r;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

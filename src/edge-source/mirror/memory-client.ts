/**
 * The replication client in memory: requests go to the destination's app
 * (`app.fetch`) directly, over a {@link MemoryLink} that can delay, drop,
 * duplicate, reorder (independent delays), cut mid-body and partition them,
 * on an injected clock; log batches may go on a log stream over it instead
 * ({@link MemoryLink.openStream}: in order, pipelined, broken by a fault). The simulator's network; the HTTP client encodes the
 * requests, so both implementations send the same bytes.
 *
 * @example
 * ```ts
 * import { MemoryLink, memoryReplicaClient } from "./memory-client.ts";
 * import type { Clock } from "../../runtime/clock.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Random } from "../../runtime/random.ts";
 * declare const clock: Clock;
 * declare const destApp: { fetch: (req: Request) => Promise<Response> };
 * const token = "pair-token";
 * const link = new MemoryLink({ clock, target: () => destApp.fetch });
 * const client = memoryReplicaClient(link, "http://dest.sim", token);
 * link.partitioned = true; // every request now fails after its delay
 * ```
 *
 * @module
 */
import type { Clock } from "../../runtime/clock.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Random } from "../../runtime/random.ts";
import { HttpReplicaClient } from "./http-client.ts";
import type { LogChannel } from "./log-stream-client.ts";
import { asHttpRequest, InOrder, LOG_PATH } from "../../protocol/log-stream/mod.ts";
import type { ReplicaClient } from "./replica-client.ts";

/** What happens to one request on the link. */
export interface LinkPlan {
  /** ms before the request reaches the destination. */
  delayMs: number;
  /** ms before its answer reaches the caller. */
  responseDelayMs: number;
  /** Lost on the way: the caller sees a transport error. */
  dropRequest?: boolean;
  /** Delivered, but the answer is lost: the caller sees a transport error. */
  dropResponse?: boolean;
  /** Delivered a second time this many ms later (that answer goes nowhere). */
  duplicateAfterMs?: number;
  /** Only the first this-many bytes of the body arrive, then it breaks off. */
  cutBodyAt?: number;
}

/** Decides the fate of each request (the simulator's seeded fault injector). */
export type LinkFaults = (request: Request) => LinkPlan;

/** The handler of the destination, or null while it is down (connection refused). */
export type LinkTarget = () =>
  | ((request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>)
  | null;

/** The peer address the destination sees (its auth log lines name it). */
const PEER: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
};

/** One source's connection to its destination, in memory. */
export class MemoryLink {
  readonly #clock: Clock;
  readonly #target: LinkTarget;
  readonly #faults: LinkFaults;
  /** Requests waiting for the destination's answer: a crash of it resets them. */
  #inflight = new Set<(e: Error) => void>();
  #closed = false;
  /** While true every request fails after its delay, as when the network is cut. */
  partitioned = false;

  constructor(opts: { clock: Clock; target: LinkTarget; faults?: LinkFaults }) {
    this.#clock = opts.clock;
    this.#target = opts.target;
    this.#faults = opts.faults ?? (() => ({ delayMs: 0, responseDelayMs: 0 }));
  }

  /** Sends `request` over the link. */
  readonly fetch = async (request: Request): Promise<Response> => {
    const plan = this.#faults(request);
    const body = new Uint8Array(await request.arrayBuffer());
    await this.after(plan.delayMs);
    if (this.partitioned || plan.dropRequest) throw new Error("connection timed out (simulated)");
    const answer = this.deliver(request, body, plan.cutBodyAt);
    if (plan.duplicateAfterMs !== undefined) {
      this.#clock.setTimeout(() => {
        if (!this.partitioned) this.deliver(request, body).catch(() => {});
      }, plan.duplicateAfterMs);
    }
    const response = await answer;
    await this.after(plan.responseDelayMs);
    if (this.partitioned || plan.dropResponse) throw new Error("connection reset (simulated)");
    return response;
  };

  /**
   * A log stream over this link (the TCP one's semantics): requests reach
   * the destination one at a time in the order sent, each after the one
   * before was answered there, and their answers come back in that order.
   * A fault on one (lost, cut, a partition, a crash of the destination)
   * breaks the stream: it and every request after it fail. Closing it loses
   * the answers, not the requests already sent (their bytes are on the way).
   */
  openStream(token: string): LogChannel {
    return new MemoryLogStream(this, token);
  }

  /** The destination died: requests it was answering fail with a reset. */
  reset(): void {
    const inflight = [...this.#inflight];
    this.#inflight.clear();
    for (const reject of inflight) reject(new Error("connection reset by peer (simulated)"));
  }

  /** The source died: nothing more reaches it (its pending requests never settle). */
  close(): void {
    this.#closed = true;
  }

  /** The fate of `request` on the link. */
  plan(request: Request): LinkPlan {
    return this.#faults(request);
  }

  /** Resolves after `ms` on the clock; never while the caller is dead. */
  after(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#clock.setTimeout(() => {
        if (!this.#closed) resolve();
      }, ms);
    });
  }

  /** Runs the request through the destination's app; the answer is read whole. */
  deliver(request: Request, body: Uint8Array<ArrayBuffer>, cutAt?: number): Promise<Response> {
    const handler = this.#target();
    if (handler === null) return Promise.reject(new Error("connection refused (simulated)"));
    const headers = new Headers(request.headers);
    // What the wire carries: the announced length, also of a body that breaks off.
    if (body.length > 0) headers.set("Content-Length", String(body.length));
    const copy = new Request(request.url, {
      method: request.method,
      headers,
      body: request.method === "GET" || request.method === "HEAD"
        ? undefined
        : cutAt === undefined
        ? body
        : brokenBody(body.subarray(0, Math.min(cutAt, body.length))),
    });
    return new Promise<Response>((resolve, reject) => {
      let done = false;
      const fail = (e: Error) => {
        if (done) return;
        done = true;
        reject(e);
      };
      this.#inflight.add(fail);
      (async () => {
        const res = await handler(copy, PEER);
        const bytes = await res.arrayBuffer();
        return new Response(bytes, { status: res.status, headers: res.headers });
      })().then(
        (res) => {
          this.#inflight.delete(fail);
          if (done) return;
          done = true;
          if (this.#closed) return; // the caller died: never settles
          resolve(res);
        },
        (e) => {
          this.#inflight.delete(fail);
          fail(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}

/** See {@link MemoryLink.openStream}. */
class MemoryLogStream implements LogChannel {
  readonly #link: MemoryLink;
  readonly #token: string;
  #closed = false;
  /** Set by a fault: nothing more reaches the destination. */
  #broken = false;
  /** Requests delivered one at a time in call order, their answers back in the same order. */
  readonly #order = new InOrder();

  constructor(link: MemoryLink, token: string) {
    this.#link = link;
    this.#token = token;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(path: string, headers: Headers, body: Uint8Array, signal?: AbortSignal): Promise<Response> {
    if (this.#closed) return Promise.reject(new Error("the log stream is closed (simulated)"));
    const link = this.#link;
    const request = asHttpRequest(headers, body, this.#token);
    const plan = link.plan(request);
    const abort = () => this.close();
    signal?.addEventListener("abort", abort);
    const answered = this.#order.run(async () => {
      try {
        await link.after(plan.delayMs);
        if (this.#broken || link.partitioned || plan.dropRequest) {
          throw new Error("connection timed out (simulated)");
        }
        if (path !== LOG_PATH) throw new Error(`the log stream carries ${LOG_PATH} only`);
        const res = await link.deliver(request, body.slice(), plan.cutBodyAt);
        // A body cut off is a connection that broke, whatever the destination answered.
        if (plan.cutBodyAt !== undefined && plan.cutBodyAt < body.length) {
          throw new Error("connection closed mid-body (simulated)");
        }
        return res;
      } catch (e) {
        this.#broken = true; // nothing sent after it reaches the destination
        throw e;
      }
    }, async (res) => {
      await link.after(plan.responseDelayMs);
      if (this.#closed || link.partitioned || plan.dropResponse) {
        throw new Error("connection reset (simulated)");
      }
      return res;
    });
    return answered.catch((e) => {
      this.#broken = true;
      this.close();
      throw e;
    }).finally(() => signal?.removeEventListener("abort", abort));
  }

  close(): void {
    this.#closed = true;
  }
}

/** A body of `bytes` that breaks off after them, as when a connection drops mid-request. */
function brokenBody(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        if (bytes.length > 0) {
          controller.enqueue(bytes.slice());
          return;
        }
      }
      controller.error(new Error("connection closed mid-body (simulated)"));
    },
  });
}

/**
 * A {@link ReplicaClient} over `link` (the HTTP client's requests, compressed
 * the same way, delivered in memory); `wire` counts the bytes sent, `random`
 * picks the link epochs' ids.
 *
 * @example
 * ```ts
 * declare const link: MemoryLink;
 * const client = memoryReplicaClient(link, "http://dest.sim", "token");
 * await client.state();
 * ```
 */
export function memoryReplicaClient(
  link: MemoryLink,
  url: string,
  token: string,
  wire?: WireStats,
  random?: Random,
  opts: { stream?: boolean } = {},
): ReplicaClient {
  return new HttpReplicaClient({
    url,
    token,
    fetch: link.fetch,
    wire,
    random,
    openStream: opts.stream ? () => Promise.resolve(link.openStream(token)) : undefined,
    logStream: opts.stream ? null : "off",
  });
}

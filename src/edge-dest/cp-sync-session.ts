/**
 * `POST /v1/repl/cp`: the CP sync sessions of the destination. A CP sync is
 * one stream of records, sent either as one streamed request or (what the
 * source does) as parts `?cp=N&part=K&last=0|1` with Content-Length, fed in
 * order into one applier. Part 0 supersedes a sync its source abandoned (it
 * died, or gave up); every part but the last is answered 202; a part out of
 * order is a 409 and the source starts again at part 0.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const app = new Hono();
 * const sessions = new CpSyncSessions(store, newWireStats(), (c) => c.req.raw.body);
 * app.post("/v1/repl/cp", (c) => sessions.handle(c));
 * await sessions.end(); // before a promotion: the CP being applied never commits
 * ```
 *
 * @module
 */
import type { Context } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { systemClock } from "../runtime/clock.ts";
import { applyCpSync, type ApplyResult } from "./cp-apply.ts";

/** Applies one stream of records (a CP sync's or a catch-up's). */
export type StreamApplier = (
  store: ObjectStore,
  body: ReadableStream<Uint8Array>,
  wire: WireStats,
  signal?: AbortSignal,
) => Promise<ApplyResult>;

/** Largest CP sync part (the source sends 4 MiB). */
export const MAX_PART_BYTES = 64 << 20;

/** The CP sync being applied. */
interface Session {
  stop: AbortController;
  done: Promise<unknown>;
  /** Parted syncs: the CP, the next part expected, where parts are written, the applier's run. */
  cp?: number;
  next?: number;
  writer?: WritableStreamDefaultWriter<Uint8Array>;
  run?: Promise<ApplyResult>;
}

/** At most one CP sync at a time, streamed or in parts. */
export class CpSyncSessions {
  readonly #store: ObjectStore;
  readonly #wire: WireStats;
  readonly #body: (c: Context) => ReadableStream<Uint8Array> | null;
  readonly #committed: ((durationMs: number) => void) | undefined;
  readonly #applyStream: StreamApplier;
  #applying: Session | null = null;

  /**
   * `body` gives a request's body stream (with the idle bound of replication
   * requests); `committed` is called with the duration of each CP sync that
   * committed (this appliance's CP, for metrics); `apply` applies a stream
   * (default a CP sync; `applyCatchUp` for `/v1/repl/catch-up`).
   */
  constructor(
    store: ObjectStore,
    wire: WireStats,
    body: (c: Context) => ReadableStream<Uint8Array> | null,
    committed?: (durationMs: number) => void,
    apply: StreamApplier = applyCpSync,
  ) {
    this.#store = store;
    this.#wire = wire;
    this.#body = body;
    this.#committed = committed;
    this.#applyStream = apply;
  }

  /** Answers one `POST /v1/repl/cp`. */
  async handle(c: Context): Promise<Response> {
    const partText = c.req.query("part");
    if (partText === undefined) return await this.#streamed(c);
    const cp = Number(c.req.query("cp"));
    const part = Number(partText);
    const last = c.req.query("last") === "1";
    const length = Number(c.req.header("Content-Length"));
    if (!Number.isSafeInteger(cp) || !Number.isSafeInteger(part) || part < 0) {
      throw new RefsyncError("bad_request", "CP sync part: give ?cp=N&part=K&last=0|1");
    }
    if (!(length >= 0 && length <= MAX_PART_BYTES)) {
      throw new RefsyncError(
        "too_large",
        `a CP sync part needs a Content-Length of at most ${MAX_PART_BYTES}`,
      );
    }
    if (part === 0) {
      // A new CP sync supersedes one its source abandoned (it died, or gave up).
      await this.end();
      const pipe = new TransformStream<Uint8Array, Uint8Array>();
      const stop = new AbortController();
      const run = this.#apply(pipe.readable, stop.signal);
      this.#applying = {
        stop,
        done: run.catch(() => {}),
        cp,
        next: 0,
        writer: pipe.writable.getWriter(),
        run,
      };
    }
    const session = this.#applying;
    if (!session?.writer || session.cp !== cp || session.next !== part) {
      throw new RefsyncError(
        "conflict",
        `CP sync part ${part} of CP ${cp} is out of order; start again at part 0`,
      );
    }
    session.next++;
    try {
      const bytes = new Uint8Array(await new Response(this.#body(c)).arrayBuffer());
      // The applier may stop early (a refused record): then its answer is the answer.
      const early = await Promise.race([
        session.writer.write(bytes).then(() => null),
        session.run!,
      ]);
      if (early === null && !last) return c.json({ cp, part }, 202);
      if (early === null) await session.writer.close();
      const result = early ?? await session.run!;
      this.#applying = null;
      return answer(c, result);
    } catch (e) {
      await this.end();
      throw e;
    }
  }

  /** Stops the CP sync being applied (its CP never commits) and waits until it stopped. */
  async end(): Promise<void> {
    const current = this.#applying;
    this.#applying = null;
    current?.stop.abort();
    await current?.writer?.abort().catch(() => {});
    await current?.done;
  }

  /** Applies a CP sync read from `stream`; a committed one counts as this appliance's CP. */
  async #apply(stream: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<ApplyResult> {
    const clock = this.#store.options.clock ?? systemClock;
    const started = clock.monotonic();
    const result = await this.#applyStream(this.#store, stream, this.#wire, signal);
    if (result.committed) this.#committed?.(clock.monotonic() - started);
    return result;
  }

  /** A CP sync in one streamed request. */
  async #streamed(c: Context): Promise<Response> {
    const stream = this.#body(c);
    if (!stream) throw new RefsyncError("bad_request", "CP sync needs a body");
    if (this.#applying) throw new RefsyncError("conflict", "a CP sync is already being applied");
    const stop = new AbortController();
    const run = this.#apply(stream, stop.signal);
    this.#applying = { stop, done: run.catch(() => {}) };
    try {
      return answer(c, await run);
    } finally {
      this.#applying = null;
    }
  }
}

/** The answer to the last part: the committed CP, or 409 with the blocks to resend as DATA. */
function answer(c: Context, result: ApplyResult): Response {
  return result.committed
    ? c.json({ cp: result.cp, digest: result.digest.toHex() })
    : c.json({ error: "need_data", message: result.reason, need: result.need }, 409);
}

/**
 * Log forwarding: the source's records go to the destination in LSN order,
 * batched (one request carries every frame queued meanwhile, so a busy source
 * sends big batches: group commit on the wire). On the log stream, whose
 * requests arrive in the order sent, the next batch goes before the last is
 * answered (the transport's window: the source encodes and sends while the
 * destination checks and syncs); a batch after one that failed or came back
 * short is void, and sending resumes after the last acknowledged LSN. Over
 * HTTP one request is in flight at a time. A write is acknowledged only when the
 * destination has confirmed its LSN durable; past `--sync-timeout` its writer
 * gets a 503 (`strict` policy) — the record stays queued and is delivered once
 * the destination is back, so the two logs never diverge.
 *
 * The `available` policy: past `--sync-timeout` (or at once when the
 * destination refuses us) the forwarder goes out of sync: every waiting write
 * is acknowledged on local durability, and until the destination has caught
 * up (within a small tail) no write waits for it at all. The records stay in
 * the log and are sent as always; the writes wait again once the destination
 * holds all but the last {@link RESUME_BYTES}.
 *
 * The link: every failure is retried, a transport failure within a second, a
 * refusal (the destination answered, but cannot mirror us) with a backoff
 * from 500 ms doubling up to 30 s; only a fencing (`fenced`: the destination
 * was promoted) is final.
 *
 * @module
 */
import { concatBytes } from "../../bytes/mod.ts";
import { assert, AssertionError } from "../../assert.ts";
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { Off } from "../../protocol/log-frame/mod.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { SyncPolicy } from "../../protocol/mirror-state/mod.ts";
import type { Appended, NvLog } from "../../storage/log/mod.ts";
import { type Clock, systemClock, type TimerId } from "../../runtime/clock.ts";

/** Retry delays after a transport failure (unreachable, 5xx) and after a refusal. */
const RETRY = {
  transport: { firstMs: 50, maxMs: 1000 },
  refusal: { firstMs: 500, maxMs: 30_000 },
} as const;

/** Every state of the link (`mirror.link`), one line each. */
export const LINK_STATES = [
  "connecting", // no handshake answered yet
  "connected",
  "down", // the destination is unreachable or answers 5xx
  "refused", // the destination answered the handshake with no
  "fenced", // the destination was promoted over this source: final
] as const;

/** Where the link to the destination stands. */
export type LinkState = typeof LINK_STATES[number];

/** A change of the link, for logs; `cause` says why it is not connected. */
export interface LinkChange {
  from: LinkState;
  to: LinkState;
  cause: string | null;
  /** The next attempt is in about this many ms (down, refused). */
  retryInMs: number | null;
}

/**
 * Largest request body of frames. A batch is held about three times while it
 * is sent (the deduper's body, fetch's copy, the HTTP client's write buffer,
 * which a kept-alive connection keeps at its largest request), so this bounds
 * those buffers: at 8 MiB the source's peak RSS was 35-60 MiB higher at the
 * same CPU per GiB (docs/internals.md, section 1).
 */
export const BATCH_BYTES = 2 << 20;
/** Frames kept in memory for sending; beyond it they are re-read from the log. */
const QUEUE_BYTES = 64 << 20;
/**
 * Out of sync (available policy), writes wait for the destination again once
 * it lacks at most this many bytes of log: a tail it takes well within
 * --sync-timeout, so the first writes to wait do not time out behind it.
 */
export const RESUME_BYTES = 1 << 20;

/**
 * A writer or CP waiting for an LSN to be acknowledged (acks), or for the link
 * (lsn 0); resolved `true` when the destination holds it, `false` when the
 * available policy stopped waiting.
 */
interface Waiter {
  lsn: number;
  resolve: (held: boolean) => void;
  reject: (e: Error) => void;
  timer: TimerId;
}

/**
 * The destination was promoted over this source (403 `fenced`); the
 * promoted side's history holds this source's log up to `heldLsn` (its
 * `promotedAtLsn`; 0: unknown), so the writes up to there are held.
 */
export class FencedError extends RefsyncError {
  constructor(message: string, readonly heldLsn: number) {
    super("fenced", message);
  }
}

/** How the forwarder talks to the destination. */
export interface ForwarderTransport {
  /**
   * Sends frames; resolves with the destination's highest durable LSN.
   * `frames()` gives the batch's bytes (concatenated on the call: dedup
   * encodes the records anew and does not need them). `records` are the same
   * frames as logged records when the batch came from memory (with their
   * block digests: what dedup needs), else null.
   */
  send(frames: () => Uint8Array, records: Appended[] | null): Promise<number>;
  /**
   * How many batches may be sent before the oldest is answered (default 1):
   * more only where they arrive in the order sent, and a batch after a short
   * or failed one is refused or fails.
   */
  window?(): number;
  /**
   * (Re)connects: handshake; resolves with the destination's highest durable
   * LSN. Rejects with a RefsyncError: `fenced` (final; a {@link FencedError}
   * says how much of this log the promoted side holds), `unavailable`
   * (transport: retried soon) or any other code (a refusal: retried with backoff).
   */
  connect(): Promise<number>;
}

/**
 * Forwards log records and tracks what the destination holds.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../../protocol/cp-sync/stats.ts";
 * import type { Appended, NvLog } from "../../storage/log/mod.ts";
 * declare const log: NvLog;
 * declare const transport: ForwarderTransport;
 * declare const records: Appended[];
 * const wire = newWireStats();
 * const fwd = new LogForwarder(log, transport, { syncTimeoutMs: 5000, wire });
 * fwd.start();
 * await fwd.forward(records); // durable on the destination
 * ```
 */
export class LogForwarder {
  #log: NvLog;
  #transport: ForwarderTransport;
  #timeoutMs: number;
  #wire: WireStats;
  #clock: Clock;
  #queue: Appended[] = [];
  #queueBytes = 0;
  #acked = 0;
  #link: LinkState = "connecting";
  #waiters: Waiter[] = [];
  #linkWaiters: Waiter[] = [];
  #onLink: (change: LinkChange) => void;
  #onChange: () => void;
  #policy: SyncPolicy;
  /**
   * Highest LSN a writer stopped waiting for (a 503, or acknowledged locally
   * when available), or that was logged before this forwarder started.
   */
  #behind = 0;
  /** Why writes do not wait for the destination now (available policy), or null. */
  #outOfSync: string | null = null;
  /** A handshake told what the destination holds (before it, `ackedLsn` means nothing). */
  #ackKnown = false;
  #wake: (() => void) | null = null;
  /** A handshake is under way; a renewal meanwhile asks for another after it. */
  #handshaking = false;
  #renewAfter: string | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  /** Why the destination is not confirming, for stats and 503 messages. */
  lastError: string | null = null;
  /**
   * Set when the pair must not continue: the destination was promoted
   * (`fenced`), or it broke an invariant of the protocol (an
   * {@link AssertionError}: every write fails with a logged 500). Final.
   */
  fatal: Error | null = null;

  constructor(
    log: NvLog,
    transport: ForwarderTransport,
    opts: {
      syncTimeoutMs: number;
      wire: WireStats;
      onLink?: (change: LinkChange) => void;
      /** Called after anything the mirror's state depends on changed (acks, going out of sync). */
      onChange?: () => void;
      /** `--sync-policy` (default strict). */
      policy?: SyncPolicy;
      /** Timeouts and retry delays (the simulator's). Default the system clock. */
      clock?: Clock;
    },
  ) {
    this.#clock = opts.clock ?? systemClock;
    this.#log = log;
    this.#transport = transport;
    this.#timeoutMs = opts.syncTimeoutMs;
    this.#wire = opts.wire;
    this.#onLink = opts.onLink ?? (() => {});
    this.#onChange = opts.onChange ?? (() => {});
    this.#policy = opts.policy ?? "strict";
    // Records logged before we started may have been acknowledged without us (the source ran
    // alone before its destination was attached, or a past life acknowledged them out of sync):
    // the pair is not in sync until the destination holds them.
    this.#behind = log.lastLsn;
  }

  /** Why writes do not wait for the destination now (available policy, out of sync), or null. */
  get outOfSync(): string | null {
    return this.#outOfSync;
  }

  /** True once a handshake told what the destination holds: {@link ackedLsn} is real. */
  get ackKnown(): boolean {
    return this.#ackKnown;
  }

  /**
   * True when the link is up, writes wait for the destination, and it holds
   * every record a writer stopped waiting for: the log is in sync.
   */
  get logInSync(): boolean {
    return this.#link === "connected" && this.#outOfSync === null && this.#acked >= this.#behind;
  }

  /**
   * Highest LSN a writer stopped waiting for (503, or acknowledged locally),
   * or logged before this forwarder started; 0 for none.
   */
  get behindLsn(): number {
    return this.#behind;
  }

  /**
   * Resolves when a write may be logged. Strict: {@link whenConnected}.
   * Available: at once while out of sync; else when the link is up, or, when
   * it is not within `timeoutMs` (or the destination refuses us), the
   * forwarder goes out of sync and it resolves then. Rejects once fatal.
   */
  admit(timeoutMs: number): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.#policy === "strict") return this.whenConnected(timeoutMs);
    if (this.#outOfSync !== null) return Promise.resolve();
    return this.whenConnected(timeoutMs).catch((e) => {
      if (this.fatal) throw this.fatal;
      this.goOutOfSync(errorMessage(e));
    });
  }

  /**
   * Starts the next round with a handshake (the mirror needs what the
   * destination holds again), when the link is up: it is `down` meanwhile.
   * During a handshake, another follows it.
   */
  renew(cause: string): void {
    // A handshake under way may have read the destination before what `cause` says changed.
    if (this.#handshaking) this.#renewAfter = cause;
    if (this.#link !== "connected") return;
    this.#setLink("down", cause, 0);
    this.#poke();
  }

  /**
   * Available policy: stop waiting for the destination. Every waiting writer
   * and CP is released (as not held), and writes do not wait until the
   * destination has nearly caught up. Strict: nothing (writers time out).
   */
  goOutOfSync(cause: string): void {
    if (this.#policy === "strict" || this.#outOfSync !== null || this.fatal) return;
    this.#outOfSync = cause;
    this.#behind = Math.max(this.#behind, this.#log.lastLsn);
    const waiters = [...this.#waiters, ...this.#linkWaiters];
    this.#waiters = [];
    this.#linkWaiters = [];
    for (const w of waiters) {
      this.#clock.clearTimeout(w.timer);
      w.resolve(false);
    }
    this.#onChange();
  }

  /** Highest LSN the destination confirmed durable. */
  get ackedLsn(): number {
    return this.#acked;
  }

  get connected(): boolean {
    return this.#link === "connected";
  }

  /** Where the link stands. */
  get link(): LinkState {
    return this.#link;
  }

  /**
   * Resolves when the link is up: at once when connected, else after the
   * handshakes now retried succeed. Rejects at once when the destination
   * refuses this source (the refusal; it is retried in the background) or
   * fenced it, and after `timeoutMs` while it stays unreachable.
   */
  whenConnected(timeoutMs: number): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.#link === "connected") return Promise.resolve();
    if (this.#link === "refused") return Promise.reject(this.#refusal());
    this.#poke();
    return this.#waitFor(
      "link",
      0,
      timeoutMs,
      (cause) =>
        `no handshake with the destination within --sync-timeout (${timeoutMs} ms)${cause}`,
    ).then(() => {});
  }

  /**
   * A promise settled through a waiter of `which` (acks or link). After
   * `timeoutMs` it is rejected with `expired(": last error")` (strict), or the
   * forwarder goes out of sync and it resolves `false` (available).
   */
  #waitFor(
    which: "acks" | "link",
    lsn: number,
    timeoutMs: number,
    expired: (cause: string) => string,
  ): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        lsn,
        resolve,
        reject,
        timer: this.#clock.setTimeout(() => {
          if (which === "link") this.#linkWaiters = this.#linkWaiters.filter((w) => w !== waiter);
          else this.#waiters = this.#waiters.filter((w) => w !== waiter);
          // The destination may get it later; until then the pair is not in sync.
          this.#behind = Math.max(this.#behind, lsn);
          const message = expired(this.lastError ? `: ${this.lastError}` : "");
          if (this.#policy === "available") {
            this.goOutOfSync(message);
            resolve(false);
          } else reject(new RefsyncError("unavailable", message));
        }, timeoutMs),
      };
      (which === "link" ? this.#linkWaiters : this.#waiters).push(waiter);
    });
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Queues `records`; resolves `true` when the destination holds them
   * durably, `false` when the available policy acknowledges them locally (at
   * once while out of sync).
   */
  forward(records: Appended[]): Promise<boolean> {
    for (const r of records) {
      if (this.#queueBytes < QUEUE_BYTES) {
        this.#queue.push(r);
        this.#queueBytes += r.frame.length;
      }
    }
    const lsn = records[records.length - 1].lsn;
    this.#poke();
    return this.waitAcked(lsn, this.#timeoutMs);
  }

  /**
   * Resolves `true` once the destination confirmed `lsn`. After `timeoutMs`:
   * 503 (strict), or `false` (available: then, and at once while out of sync).
   */
  waitAcked(lsn: number, timeoutMs: number): Promise<boolean> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (lsn <= this.#acked) return Promise.resolve(true);
    if (this.#outOfSync !== null) {
      this.#behind = Math.max(this.#behind, lsn);
      return Promise.resolve(false);
    }
    return this.#waitFor(
      "acks",
      lsn,
      timeoutMs,
      (cause) =>
        `the destination did not confirm LSN ${lsn} within --sync-timeout (${timeoutMs} ms)` +
        `${cause}; the write was not acknowledged`,
    );
  }

  /** Marks the pair broken for good: every waiting and future write fails with `error`. */
  #fail(error: Error): void {
    this.fatal = error;
    this.lastError = error.message;
    this.#setLink(error instanceof RefsyncError ? "fenced" : "down", error.message, null);
    this.#rejectAll(error);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#poke();
    await this.#loop;
    this.#rejectAll(new RefsyncError("unavailable", "the source is shutting down"));
  }

  #rejectAll(error: Error): void {
    for (const w of [...this.#waiters, ...this.#linkWaiters]) {
      this.#clock.clearTimeout(w.timer);
      w.reject(error);
    }
    this.#waiters = [];
    this.#linkWaiters = [];
  }

  #refusal(): RefsyncError {
    return new RefsyncError(
      "unavailable",
      `the destination refuses this source: ${this.lastError}; retried in the background`,
    );
  }

  #setLink(to: LinkState, cause: string | null, retryInMs: number | null): void {
    const from = this.#link;
    // Each transition is reported once, not once per retry; a new refusal reason is news.
    const changed = from !== to || (to === "refused" && cause !== this.lastError);
    this.#link = to;
    this.lastError = cause;
    if (changed) this.#onLink({ from, to, cause, retryInMs });
    // Available: a refusal is not waited out (strict answers 503 at once).
    if (to === "refused") this.goOutOfSync(`the destination refuses this source: ${cause}`);
    if (to !== "connected" && to !== "refused") return;
    const refusal = to === "refused" ? this.#refusal() : null;
    for (const w of this.#linkWaiters) {
      this.#clock.clearTimeout(w.timer);
      if (refusal) w.reject(refusal);
      else w.resolve(true);
    }
    this.#linkWaiters = [];
  }

  #poke(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #ack(lsn: number): void {
    if (lsn > this.#acked) this.#acked = lsn;
    while (this.#queue.length > 0 && this.#queue[0].lsn <= this.#acked) {
      this.#queueBytes -= this.#queue.shift()!.frame.length;
    }
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.lsn <= this.#acked) {
        this.#clock.clearTimeout(w.timer);
        w.resolve(true);
      } else still.push(w);
    }
    this.#waiters = still;
    // Nearly caught up: writes wait for the destination again (the tail follows within a batch).
    if (
      this.#outOfSync !== null && this.#link === "connected" &&
      this.#log.bytesAfter(this.#acked) <= RESUME_BYTES
    ) {
      this.#outOfSync = null;
    }
    this.#onChange();
  }

  /** The frames to send from LSN `from` on: from the queue, else re-read from the log. */
  #nextBatch(from: number): Batch | null {
    if (from > this.#log.lastLsn) return null;
    while (this.#queue.length > 0 && this.#queue[0].lsn <= this.#acked) {
      this.#queueBytes -= this.#queue.shift()!.frame.length;
    }
    const start = this.#queue.length > 0 ? from - this.#queue[0].lsn : -1;
    if (start >= 0 && start < this.#queue.length && this.#queue[start].lsn === from) {
      const records: Appended[] = [];
      let size = 0;
      let expect = from;
      for (let i = start; i < this.#queue.length; i++) {
        const r = this.#queue[i];
        if (r.lsn !== expect || size + r.frame.length > BATCH_BYTES && records.length > 0) break;
        records.push(r);
        size += r.frame.length;
        expect++;
      }
      return {
        frames: () => concatBytes(records.map((r) => r.frame)),
        count: records.length,
        lastLsn: expect - 1,
        records,
      };
    }
    // Catch-up after an outage or a restart: the log has what memory does not.
    const frames = this.#log.readFrames(from, BATCH_BYTES);
    return frames &&
      {
        frames: () => frames,
        count: countFrames(frames),
        lastLsn: lastLsnOf(frames),
        records: null,
      };
  }

  async #run(): Promise<void> {
    let backoff = 0;
    let kind: keyof typeof RETRY = "transport";
    const inFlight: InFlight[] = [];
    while (!this.#stopped && !this.fatal) {
      let connecting = false;
      try {
        if (this.#link !== "connected") {
          // Their answers are the handshake's to tell: it reads what the destination holds.
          await drain(inFlight);
          connecting = true;
          this.#handshaking = true;
          const held = await this.#transport.connect().finally(() => this.#handshaking = false);
          // The handshake cut a destination tail this log lost: it holds nothing we lack.
          assert(
            held <= this.#log.lastLsn,
            `the destination holds LSN ${held} after the handshake; this log ends at ${this.#log.lastLsn}`,
          );
          this.#ackKnown = true;
          this.#setLink("connected", null, null);
          // A destination can hold less than it acknowledged (its disk was replaced, or restored
          // from an old copy, and its log reset to what a catch-up's target covers): resend from
          // what it holds, or the next frame leaves a gap it refuses forever.
          if (held < this.#acked) this.#acked = held;
          this.#ack(held);
          backoff = 0;
          connecting = false;
          const renewal = this.#renewAfter;
          this.#renewAfter = null;
          if (renewal !== null) {
            this.#setLink("down", renewal, 0);
            continue;
          }
        }
        const window = this.#transport.window?.() ?? 1;
        const sentTo = inFlight.at(-1)?.lastLsn ?? this.#acked;
        const batch = inFlight.length < window ? this.#nextBatch(sentTo + 1) : null;
        if (batch !== null) {
          this.#wire.logFrames += batch.count;
          if (inFlight.length > 0) this.#wire.logBatchesOverlapped++;
          inFlight.push(
            new InFlight(batch.lastLsn, this.#transport.send(batch.frames, batch.records)),
          );
          continue;
        }
        const oldest = inFlight[0];
        if (oldest === undefined) {
          await this.#sleep(1000);
          continue;
        }
        // Room in the window: a record logged meanwhile goes before the oldest answer comes.
        if (inFlight.length < window) await this.#settledOrPoked(oldest);
        if (!oldest.settled && inFlight.length < window) continue;
        inFlight.shift();
        const acked = await oldest.answer;
        // Paired with the send: an acknowledgement of a record never sent would acknowledge writes
        // the destination does not hold.
        assert(
          acked <= oldest.lastLsn,
          `the destination acknowledged LSN ${acked}; the last LSN sent was ${oldest.lastLsn}`,
        );
        if (acked < this.#acked) {
          // It holds less than it acknowledged (its disk replaced, or restored from an older copy,
          // while the link stayed up): a reference frame it cannot resolve is answered so, and
          // sent again it would be again. The handshake tells what it holds, and what it needs.
          await drain(inFlight);
          const cause = `the destination holds LSN ${acked}; it acknowledged LSN ${this.#acked}`;
          this.#setLink("down", cause, 0);
          continue;
        }
        this.#ack(acked);
        // Short (it needs a record whole): the batches sent after it met a gap and were refused.
        if (acked < oldest.lastLsn) await drain(inFlight);
      } catch (e) {
        // The batches sent after a failed one are void: each failed too, or met a gap.
        await drain(inFlight);
        if (e instanceof RefsyncError && e.code === "fenced" || e instanceof AssertionError) {
          // The promoted side's history holds our log up to `heldLsn`: those writes are held.
          if (e instanceof FencedError) this.#ack(Math.min(e.heldLsn, this.#log.lastLsn));
          this.#fail(e);
          break;
        }
        // Only the handshake judges the pairing: a failed send reconnects soon, and it will tell.
        const refused = connecting && e instanceof RefsyncError && e.code !== "unavailable";
        const next: keyof typeof RETRY = refused ? "refusal" : "transport";
        backoff = next === kind && backoff > 0
          ? Math.min(backoff * 2, RETRY[next].maxMs)
          : RETRY[next].firstMs;
        kind = next;
        this.#setLink(refused ? "refused" : "down", errorMessage(e), backoff);
        // A refusal waits its backoff; an unreachable destination is tried again at a write.
        await this.#sleep(backoff, refused);
      }
    }
    await drain(inFlight);
  }

  /** Resolves when `batch` is answered (or refused), or when poked before. */
  #settledOrPoked(batch: InFlight): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        if (this.#wake === wake) this.#wake = null;
        resolve();
      };
      this.#wake = wake;
      batch.answer.then(wake, wake);
    });
  }

  /** Sleeps up to `ms`, or until poked (unless `firm`: stop() still ends it). */
  #sleep(ms: number, firm = false): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      const wake = () => {
        if (firm && !this.#stopped) {
          this.#wake = wake;
          return;
        }
        this.#clock.clearTimeout(timer);
        resolve();
      };
      this.#wake = wake;
    });
  }
}

/** Frames to send: `records` when they came from memory (what dedup needs), else null. */
interface Batch {
  frames: () => Uint8Array;
  count: number;
  lastLsn: number;
  records: Appended[] | null;
}

/** A batch sent and not yet answered. */
class InFlight {
  settled = false;
  constructor(readonly lastLsn: number, readonly answer: Promise<number>) {
    const settle = () => this.settled = true;
    answer.then(settle, settle);
  }
}

/** Waits until every batch in `inFlight` is answered or refused, and forgets them. */
async function drain(inFlight: InFlight[]): Promise<void> {
  await Promise.allSettled(inFlight.splice(0).map((b) => b.answer));
}

/** Frames in a batch of whole frames (each starts with its magic and u32 length). */
function countFrames(batch: Uint8Array): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let n = 0;
  for (let at = 0; at + 8 <= batch.length; at += view.getUint32(at + Off.frameLength, true)) n++;
  return n;
}

/** The LSN of the last frame of a batch of whole frames. */
function lastLsnOf(batch: Uint8Array): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let last = 0;
  for (
    let at = 0;
    at + Off.lsn + 8 <= batch.length;
    at += view.getUint32(at + Off.frameLength, true)
  ) {
    last = at;
  }
  return Number(view.getBigUint64(last + Off.lsn, true));
}

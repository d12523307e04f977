/**
 * Log forwarding: the source's records go to the destination in LSN order,
 * batched (one request carries every frame queued meanwhile, so a busy source
 * sends big batches: group commit on the wire), one request in flight at a
 * time over a kept-alive connection. A write is acknowledged only when the
 * destination has confirmed its LSN durable; past `--sync-timeout` its writer
 * gets a 503 — the record stays queued and is delivered once the destination
 * is back, so the two logs never diverge.
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";
import type { WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Appended, NvLog } from "../../storage/log/mod.ts";

/** Largest request body of frames. */
const BATCH_BYTES = 8 << 20;
/** Frames kept in memory for sending; beyond it they are re-read from the log. */
const QUEUE_BYTES = 64 << 20;

interface Waiter {
  lsn: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** How the forwarder talks to the destination. */
export interface ForwarderTransport {
  /** Sends frames; resolves with the destination's highest durable LSN. */
  send(frames: Uint8Array): Promise<number>;
  /** (Re)connects: handshake; resolves with the destination's highest durable LSN. */
  connect(): Promise<number>;
}

/**
 * Forwards log records and tracks what the destination holds.
 *
 * @example
 * ```ts
 * const fwd = new LogForwarder(log, transport, { syncTimeoutMs: 5000, wire });
 * fwd.start();
 * await fwd.forward(ticket.records); // durable on the destination
 * ```
 */
export class LogForwarder {
  #log: NvLog;
  #transport: ForwarderTransport;
  #timeoutMs: number;
  #wire: WireStats;
  #queue: Appended[] = [];
  #queueBytes = 0;
  #acked = 0;
  #connected = false;
  #waiters: Waiter[] = [];
  #wake: (() => void) | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  /** Why the destination is not confirming, for stats and 503 messages. */
  lastError: string | null = null;
  /** Set when the pair must not continue (e.g. the destination was promoted). */
  fatal: string | null = null;

  constructor(
    log: NvLog,
    transport: ForwarderTransport,
    opts: { syncTimeoutMs: number; wire: WireStats },
  ) {
    this.#log = log;
    this.#transport = transport;
    this.#timeoutMs = opts.syncTimeoutMs;
    this.#wire = opts.wire;
  }

  /** Highest LSN the destination confirmed durable. */
  get ackedLsn(): number {
    return this.#acked;
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Queues `records` and resolves when the destination holds them durably. */
  forward(records: Appended[]): Promise<void> {
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

  /** Resolves once the destination confirmed `lsn`; 503 after `timeoutMs`. */
  waitAcked(lsn: number, timeoutMs: number): Promise<void> {
    if (this.fatal) return Promise.reject(new RefsyncError("unavailable", this.fatal));
    if (lsn <= this.#acked) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        lsn,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          reject(
            new RefsyncError(
              "unavailable",
              `the destination did not confirm LSN ${lsn} within --sync-timeout (${timeoutMs} ms)` +
                (this.lastError ? `: ${this.lastError}` : "") + "; the write was not acknowledged",
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Marks the pair broken: every waiting and future write fails with `reason`. */
  fail(reason: string): void {
    this.fatal = reason;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new RefsyncError("unavailable", reason));
    }
    this.#waiters = [];
  }

  /** The connection must be re-established (handshake) before the next send. */
  disconnect(reason: string): void {
    this.#connected = false;
    this.lastError = reason;
    this.#poke();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#poke();
    await this.#loop;
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new RefsyncError("unavailable", "the source is shutting down"));
    }
    this.#waiters = [];
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
        clearTimeout(w.timer);
        w.resolve();
      } else still.push(w);
    }
    this.#waiters = still;
  }

  /** The frames to send next, from LSN acked+1: from the queue, else re-read from the log. */
  #nextBatch(): Uint8Array | null {
    const from = this.#acked + 1;
    if (from > this.#log.lastLsn) return null;
    while (this.#queue.length > 0 && this.#queue[0].lsn < from) {
      this.#queueBytes -= this.#queue.shift()!.frame.length;
    }
    if (this.#queue.length > 0 && this.#queue[0].lsn === from) {
      const parts: Uint8Array[] = [];
      let size = 0;
      let expect = from;
      for (const r of this.#queue) {
        if (r.lsn !== expect || size + r.frame.length > BATCH_BYTES && parts.length > 0) break;
        parts.push(r.frame);
        size += r.frame.length;
        expect++;
      }
      const out = new Uint8Array(size);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    }
    // Catch-up after an outage or a restart: the log has what memory does not.
    return this.#log.readFrames(from, BATCH_BYTES);
  }

  async #run(): Promise<void> {
    let backoff = 50;
    while (!this.#stopped) {
      if (this.fatal) {
        await this.#sleep(1000);
        continue;
      }
      try {
        if (!this.#connected) {
          this.#ack(await this.#transport.connect());
          this.#connected = true;
          this.lastError = null;
        }
        const batch = this.#nextBatch();
        if (batch === null) {
          await this.#sleep(1000);
          continue;
        }
        this.#wire.logBytes += batch.length;
        this.#wire.logFrames += countFrames(batch);
        this.#ack(await this.#transport.send(batch));
        backoff = 50;
      } catch (e) {
        this.#connected = false;
        this.lastError = e instanceof Error ? e.message : String(e);
        if (e instanceof RefsyncError && e.code === "forbidden") this.fail(e.message);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, 1000);
      }
    }
  }

  /** Sleeps up to `ms`, or until poked. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Frames in a batch of whole frames (each starts with its magic and u32 length). */
function countFrames(batch: Uint8Array): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  let n = 0;
  for (let at = 0; at + 8 <= batch.length; at += view.getUint32(at + 4, true)) n++;
  return n;
}

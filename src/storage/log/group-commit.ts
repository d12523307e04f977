/**
 * Group commit: concurrent writers share one sync. While a sync runs, new
 * requests queue; the next sync covers all of them at once.
 *
 * @module
 */

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Batches durability requests onto one sync callback.
 *
 * `sync` must make durable everything written before it was CALLED (not merely
 * before it resolves): a request made while a sync runs waits for the next one.
 *
 * @example
 * ```ts
 * declare function fdatasyncAll(): Promise<void>;
 * declare function writeFrame(frame: Uint8Array): void;
 * declare const a: Uint8Array, b: Uint8Array;
 * const gc = new GroupCommit(async () => await fdatasyncAll());
 * writeFrame(a); const p1 = gc.request();
 * writeFrame(b); const p2 = gc.request(); // same sync as p1
 * await Promise.all([p1, p2]);
 * ```
 */
export class GroupCommit {
  #sync: () => Promise<void>;
  #waiting: Waiter[] = [];
  #running: Promise<void> | null = null;
  #scheduled = false;
  #rounds = 0;

  constructor(sync: () => Promise<void>) {
    this.#sync = sync;
  }

  /** Syncs run so far. */
  get rounds(): number {
    return this.#rounds;
  }

  /** Requests durability of everything written so far; resolves after a sync that started later. */
  request(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.#waiting.push({ resolve, reject }));
    this.#schedule();
    // Marked handled: a writer that never awaits must not crash the process on a
    // failed sync; whoever awaits `p` still sees the rejection.
    p.catch(() => {});
    return p;
  }

  /** Resolves once no sync runs and none is pending (errors are the requesters' to see). */
  async idle(): Promise<void> {
    while (this.#running || this.#scheduled || this.#waiting.length > 0) {
      if (!this.#running && !this.#scheduled) this.#schedule();
      await (this.#running ?? Promise.resolve()).catch(() => {});
      // Let a scheduled microtask start its round.
      await Promise.resolve();
    }
  }

  #schedule(): void {
    if (this.#running || this.#scheduled) return; // the running round reschedules when done
    this.#scheduled = true;
    // Deferred by a microtask so that writers in the same task join one sync.
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#run();
    });
  }

  #run(): void {
    if (this.#running) throw new Error("invariant: one sync at a time");
    const batch = this.#waiting;
    this.#waiting = [];
    if (batch.length === 0) return;
    this.#rounds++;
    this.#running = (async () => {
      try {
        await this.#sync();
        for (const w of batch) w.resolve();
      } catch (e) {
        for (const w of batch) w.reject(e);
      } finally {
        this.#running = null;
        if (this.#waiting.length > 0) this.#schedule();
      }
    })();
  }
}

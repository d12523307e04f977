/**
 * The CP scheduler: takes a CP every `--cp-interval` ms when anything is dirty.
 * (The dirty-bytes trigger and back pressure live in the store, on the write path.)
 *
 * @module
 */
import type { ObjectStore } from "./store.ts";
import { type Clock, systemClock, type TimerId } from "../../runtime/clock.ts";

/**
 * Runs periodic CPs until stopped.
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "./store.ts";
 * declare const store: ObjectStore;
 * const scheduler = new CpScheduler(store, 1000);
 * scheduler.start();
 * await scheduler.stop();
 * ```
 */
export class CpScheduler {
  #store: ObjectStore;
  #intervalMs: number;
  #clock: Clock;
  #timer: TimerId | undefined;
  #running: Promise<unknown> | null = null;
  /** The last CP failure, for stats. */
  lastError: string | null = null;

  constructor(store: ObjectStore, intervalMs: number, clock: Clock = systemClock) {
    this.#store = store;
    this.#intervalMs = intervalMs;
    this.#clock = clock;
  }

  start(): void {
    if (this.#intervalMs <= 0 || this.#timer !== undefined) return;
    this.#timer = this.#clock.setInterval(() => this.#tick(), this.#intervalMs);
  }

  #tick(): void {
    if (this.#running || this.#store.dirtyBytes === 0 && !this.#store.needsSync) return;
    this.#running = this.#store.checkpoint()
      .then(() => {
        this.lastError = null;
      })
      .catch((e) => {
        this.lastError = e instanceof Error ? e.message : String(e);
      })
      .finally(() => {
        this.#running = null;
      });
  }

  /** Stops the timer and waits for a CP it started. */
  async stop(): Promise<void> {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

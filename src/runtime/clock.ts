/**
 * Time, behind one small interface: the wall clock (mtimes, log lines), a
 * monotonic clock (durations, idle bounds) and timers. The appliances use
 * {@link systemClock}; the simulator passes a clock of its own, so a seed
 * replays every timer and every mtime (mtimes end up in catalog records and
 * hence in volume digests).
 *
 * @example
 * ```ts
 * import { type Clock, systemClock } from "./clock.ts";
 * const clock: Clock = systemClock;
 * const timer = clock.setTimeout(() => console.log("late"), 1000);
 * clock.clearTimeout(timer);
 * ```
 *
 * @module
 */

/** A timer handle of a {@link Clock} (a number, or the global timers' handle). */
export type TimerId = number | ReturnType<typeof setTimeout>;

/** Where time comes from. */
export interface Clock {
  /** Wall-clock milliseconds since the epoch (`Date.now()`). */
  now(): number;
  /** Monotonic milliseconds for durations (`performance.now()`). */
  monotonic(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer (undefined and unknown handles are ignored). */
  clearTimeout(id: TimerId | undefined): void;
  /** Runs `fn` every `ms` milliseconds until cleared. */
  setInterval(fn: () => void, ms: number): TimerId;
  /** Cancels an interval. */
  clearInterval(id: TimerId | undefined): void;
}

/**
 * The real clock: `Date.now`, `performance.now` and the global timers.
 *
 * @example
 * ```ts
 * import { systemClock } from "./clock.ts";
 * const started = systemClock.monotonic();
 * const tookMs = systemClock.monotonic() - started; // e.g. 0.01
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as number),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (id) => clearInterval(id as number),
};

/**
 * A promise resolved after `ms` on `clock`.
 *
 * @example
 * ```ts
 * import { sleep, systemClock } from "./clock.ts";
 * await sleep(systemClock, 1);
 * ```
 */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * `work`'s outcome, or, when `ms` pass on `clock` first, a rejection with the
 * error `late()` returns (`late` may also stop what `work` waits on, e.g.
 * close its connection). The timer is cleared either way.
 *
 * @example
 * ```ts
 * import { deadline, systemClock } from "./clock.ts";
 * const never = new Promise<number>(() => {});
 * await deadline(never, 10, () => new Error("no answer in 10 ms"), systemClock).catch((e) => e);
 * ```
 */
export async function deadline<T>(
  work: Promise<T>,
  ms: number,
  late: () => Error,
  clock: Clock = systemClock,
): Promise<T> {
  let timer: TimerId | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(late()), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clock.clearTimeout(timer);
  }
}

/**
 * Simulated time for tests that run real components on the simulator's
 * clock (`sim/clock.ts`): let real I/O and promise chains run, then fire the
 * timers due.
 *
 * @example
 * ```ts
 * import { SimClock } from "../../sim/clock.ts";
 * import { advance } from "./sim-time.ts";
 * const clock = new SimClock();
 * await advance(clock, 2500); // every timer due within 2.5 simulated seconds fired
 * ```
 *
 * @module
 */
import type { SimClock } from "../../sim/clock.ts";

/** Lets real I/O (a log's fdatasyncs) and the promise chains run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((r) => setTimeout(r, 2));
}

/** Moves simulated time on by `ms`, firing every timer due meanwhile (at most 1000). */
export async function advance(sim: SimClock, ms: number): Promise<void> {
  const until = sim.elapsed + ms;
  for (let i = 0; i < 1000; i++) {
    await settle();
    if (!sim.fireNext(until)) break;
  }
  await settle();
}

/**
 * The process's sources of nondeterminism (time and randomness), injectable:
 * real by default, simulated in `sim/`.
 *
 * @example
 * ```ts
 * import { Prng, systemClock } from "./mod.ts";
 * const stamp = systemClock.now();
 * const coin = new Prng(stamp).chance(0.5);
 * ```
 *
 * @module
 */
export { type Clock, sleep, systemClock, type TimerId } from "./clock.ts";
export { Prng, type Random, systemRandom } from "./random.ts";

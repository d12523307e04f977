/**
 * Cooperative time slicing for long synchronous work (writing a CP, applying
 * a CP sync): after a slice of work the event loop serves requests, so client
 * writes and log forwarding are never stalled behind a whole CP.
 *
 * @module
 */
import { type Clock, systemClock } from "../runtime/clock.ts";

/** How long work may hold the event loop before it lets requests run. */
export const SLICE_MS = 10;
/** When the current slice began, per clock (the simulator's clock has slices of its own). */
const sliceStart = new WeakMap<Clock, number>();

/**
 * Yields to the event loop when the current slice is used up. Yields by time,
 * not by count: a timer per block would cost more than the work (nested timers
 * are clamped to 4 ms).
 *
 * @example
 * ```ts
 * declare const blocks: Uint8Array[];
 * declare function write(block: Uint8Array): void;
 * for (const block of blocks) {
 *   write(block);
 *   await endOfSlice();
 * }
 * ```
 */
export async function endOfSlice(clock: Clock = systemClock): Promise<void> {
  const start = sliceStart.get(clock);
  if (start === undefined) {
    sliceStart.set(clock, clock.monotonic());
    return;
  }
  if (clock.monotonic() - start < SLICE_MS) return;
  await new Promise((resolve) => clock.setTimeout(() => resolve(undefined), 0));
  sliceStart.set(clock, clock.monotonic());
}

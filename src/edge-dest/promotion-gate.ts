/**
 * Replication requests and a promotion never overlap. A promotion replays
 * the log into the image it commits and then takes writes of its own; a log
 * batch still being received would append the source's records after that
 * replay (records the promoted image lacks, and under LSNs its own writes
 * take), and a log reset would cut under it. So a promotion closes the gate
 * first: replication requests that arrive are refused (409), the bodies of
 * the log batches under way stop being read at their next frame (the frames
 * already checked are appended: they are the source's, and the promotion
 * replays them), and it starts once every request under way has ended. A
 * promotion that fails opens the gate again.
 *
 * @example
 * ```ts
 * import { PromotionGate } from "./promotion-gate.ts";
 * const gate = new PromotionGate();
 * const answer = gate.enter((signal) => Promise.resolve(signal.aborted)); // a request
 * await gate.promote(() => Promise.resolve("promoted")); // after the request ended
 * console.log(await answer); // false
 * ```
 *
 * @module
 */
import { RefsyncError } from "../errors/mod.ts";

/** See the module documentation. */
export class PromotionGate {
  readonly #under = new Map<Promise<unknown>, AbortController>();
  #closed = false;

  /** Replication requests under way. */
  get size(): number {
    return this.#under.size;
  }

  /**
   * Runs one replication request; `signal` aborts when a promotion starts
   * (a log batch stops reading its body then). Refused while one is under way.
   */
  async enter<T>(request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#closed) throw promoting();
    const abort = new AbortController();
    const running = request(abort.signal);
    this.#under.set(running, abort);
    try {
      return await running;
    } finally {
      this.#under.delete(running);
    }
  }

  /**
   * Closes the gate, signals the requests under way and runs `stop` (what
   * ends the others: the CP sync sessions), waits for them all to end, then
   * runs `promote`.
   */
  async promote<T>(promote: () => Promise<T>, stop?: () => Promise<void>): Promise<T> {
    if (this.#closed) throw new RefsyncError("conflict", "a promotion is already under way");
    this.#closed = true;
    try {
      const under = [...this.#under];
      for (const [, abort] of under) abort.abort(promoting());
      await stop?.();
      await Promise.allSettled(under.map(([running]) => running));
      return await promote();
    } finally {
      this.#closed = false;
    }
  }
}

/** The refusal of a replication request during a promotion. */
export function promoting(): RefsyncError {
  return new RefsyncError(
    "conflict",
    "this appliance is being promoted; it takes no more replication",
  );
}

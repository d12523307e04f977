/**
 * Which zstd level the link's log stream uses: the one that moves a raw byte
 * in the least time, by what is measured on this link and this CPU.
 *
 * Batches go one at a time, so a raw byte costs its compression and then its
 * share of the transfer: `1 / speed(L) + ratio(L) / bandwidth`. On a fast
 * link (the bandwidth term vanishes) the fastest level wins, level 1; on a
 * slow one the level that sends fewest bytes does, as long as compressing
 * keeps up. Nothing is assumed of a level: `speed` and `ratio` are measured
 * while it is in use (speed as the compressor runs here, so a busy CPU shows
 * as a slow one), and a level is tried when the one in use is
 * {@link EXPLORE} times more bound by one side: the next level up when the
 * link takes that much longer than compressing, the next down when
 * compressing does. The bandwidth is what the destination measures: how long
 * it spent receiving each body (`Refsync-Receive-Ms` on its answer), over
 * bodies large enough to time; the best of the last {@link BANDWIDTH_SAMPLES}
 * (as BBR estimates a path's bandwidth), since a busy CPU on either side only
 * ever makes a body arrive slower than the link could carry it. Measurements
 * older than {@link STALE_MS} are taken again (the data and the link change).
 *
 * Never below level 1: an edge site pays for the bytes on its link, so a fast
 * link keeps the cheapest compression, not none (what does not compress goes
 * raw anyway, by the probe). A change restarts the epoch (a new zstd context,
 * history lost), so it happens at most once per {@link DWELL_MS}, and going
 * back to a measured level takes a gain of {@link MIN_GAIN}.
 *
 * @example
 * ```ts
 * const policy = new LevelPolicy();
 * policy.compressed(1, 2 << 20, 1 << 20, 8, 0); // 2 MiB in 8 ms, to 1 MiB
 * policy.received(1 << 20, 100); // 1 MiB took 100 ms to arrive: 10 MiB/s
 * policy.decide(0); // 1: nothing changes before the first dwell is over
 * policy.decide(10_000); // 3: the link is slow, the CPU fast: try the next level up
 * ```
 *
 * @module
 */

/** The levels chosen among, fastest first. */
export const LEVELS = [1, 3, 6] as const;
/** A level of {@link LEVELS}. */
export type Level = typeof LEVELS[number];

/** Least time between two changes (ms): each costs the epoch's history. */
export const DWELL_MS = 10_000;
/** A measurement older than this (ms) is not compared with: the level is tried again. */
export const STALE_MS = 120_000;
/** A side this many times slower than the other makes the next level that way worth a try. */
export const EXPLORE = 2;
/** Going back to a measured level must promise at least this share less time per raw byte. */
export const MIN_GAIN = 0.05;
/** Bodies smaller than this are not timed for the bandwidth (latency and buffers dominate). */
export const MIN_TIMED_BYTES = 64 << 10;
/** Timed bodies the bandwidth is the best of. */
export const BANDWIDTH_SAMPLES = 16;
/** Weight of a new sample in the running means. */
const ALPHA = 0.2;

interface Measured {
  /** Raw bytes per ms. */
  speed: number;
  /** Wire bytes per raw byte. */
  ratio: number;
  /** When last measured (ms). */
  at: number;
}

/** See the module documentation. */
export class LevelPolicy {
  #level: Level = 1;
  readonly #measured = new Map<Level, Measured>();
  /** Wire bytes per ms of the last timed bodies, oldest first. */
  readonly #rates: number[] = [];
  #changedAt = 0;

  /** The level in use. */
  get level(): Level {
    return this.#level;
  }

  /** Link bandwidth as measured (bytes per ms; Infinity: too fast to time), null before. */
  get bandwidth(): number | null {
    return this.#rates.length === 0 ? null : Math.max(...this.#rates);
  }

  /** A batch of `raw` bytes compressed at `level` to `wire` bytes in `ms`, at time `at`. */
  compressed(level: Level, raw: number, wire: number, ms: number, at: number): void {
    if (raw <= 0) return;
    const speed = raw / Math.max(ms, 0.01);
    const ratio = wire / raw;
    const m = this.#measured.get(level);
    this.#measured.set(
      level,
      m && at - m.at < STALE_MS
        ? {
          speed: m.speed + ALPHA * (speed - m.speed),
          ratio: m.ratio + ALPHA * (ratio - m.ratio),
          at,
        }
        : { speed, ratio, at },
    );
  }

  /** The destination took `ms` to receive a body of `wire` bytes. */
  received(wire: number, ms: number): void {
    if (wire < MIN_TIMED_BYTES || !(ms >= 0)) return;
    // Received within a millisecond: faster than can be timed, so the link costs nothing here.
    this.#rates.push(ms < 1 ? Infinity : wire / ms);
    if (this.#rates.length > BANDWIDTH_SAMPLES) this.#rates.shift();
  }

  /** The level for the next batch at time `nowMs` (monotonic); see the module documentation. */
  decide(nowMs: number): Level {
    const bandwidth = this.bandwidth;
    if (nowMs - this.#changedAt < DWELL_MS || bandwidth === null) return this.#level;
    const fresh = (level: Level) => {
      const m = this.#measured.get(level);
      return m && nowMs - m.at < STALE_MS ? m : null;
    };
    const here = fresh(this.#level);
    if (!here) return this.#level;
    const compressing = 1 / here.speed;
    const carrying = here.ratio / bandwidth;
    const i = LEVELS.indexOf(this.#level);
    const next = carrying > EXPLORE * compressing
      ? LEVELS[i + 1]
      : compressing > EXPLORE * carrying
      ? LEVELS[i - 1]
      : undefined;
    if (next !== undefined && !fresh(next)) return this.#change(next, nowMs);
    const cost = (m: Measured) => 1 / m.speed + m.ratio / bandwidth;
    let best = this.#level;
    let bestCost = cost(here);
    for (const level of LEVELS) {
      const m = fresh(level);
      if (m && cost(m) < bestCost) [best, bestCost] = [level, cost(m)];
    }
    if (bestCost <= cost(here) * (1 - MIN_GAIN)) return this.#change(best, nowMs);
    return this.#level;
  }

  #change(level: Level, nowMs: number): Level {
    this.#level = level;
    this.#changedAt = nowMs;
    return level;
  }
}

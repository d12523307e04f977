/**
 * The simulator's time: one clock for the whole pair, whose timers fire only
 * when the simulation advances it ({@link SimClock.fireNext}). Each simulated
 * process gets a view of it ({@link SimClock.process}); killing the process
 * cancels its timers, so nothing it scheduled ever runs again.
 *
 * @module
 */
import type { Clock, TimerId } from "../src/runtime/clock.ts";

/** Wall-clock time of simulated time 0 (2025-01-01T00:00:00Z): mtimes are replayable. */
export const EPOCH_MS = 1_735_689_600_000;

interface Timer {
  id: number;
  at: number;
  seq: number;
  fn: () => void;
  every: number;
  owner: ProcessClock | null;
}

/** A binary heap of timers by (time, order of creation). */
class TimerHeap {
  #items: Timer[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Timer | undefined {
    return this.#items[0];
  }

  push(t: Timer): void {
    const a = this.#items;
    a.push(t);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): Timer | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Simulated time for every process of a trial. */
export class SimClock {
  #now = 0;
  #seq = 0;
  #heap = new TimerHeap();
  #live = new Map<number, Timer>();

  /** Simulated milliseconds since the trial began. */
  get elapsed(): number {
    return this.#now;
  }

  /** When the next timer is due, or null when none is left. */
  get nextAt(): number | null {
    this.#skipCancelled();
    return this.#heap.peek()?.at ?? null;
  }

  /** A clock for one process; {@link ProcessClock.kill} ends its timers. */
  process(): ProcessClock {
    return new ProcessClock(this);
  }

  /** A clock for the simulation itself (never killed). */
  get shared(): Clock {
    return this.#shared;
  }
  readonly #shared: Clock = new ProcessClock(this);

  /** @internal */
  add(owner: ProcessClock | null, fn: () => void, ms: number, every: number): number {
    const id = ++this.#seq;
    const t: Timer = { id, at: this.#now + Math.max(0, ms), seq: id, fn, every, owner };
    this.#live.set(id, t);
    this.#heap.push(t);
    return id;
  }

  /** @internal */
  cancel(id: TimerId | undefined): void {
    if (typeof id === "number") this.#live.delete(id);
  }

  /** @internal Cancels every timer of `owner`. */
  cancelAll(owner: ProcessClock): void {
    for (const [id, t] of this.#live) if (t.owner === owner) this.#live.delete(id);
  }

  #skipCancelled(): void {
    while (this.#heap.size > 0 && !this.#live.has(this.#heap.peek()!.id)) this.#heap.pop();
  }

  /**
   * Advances time to the next timer and runs it. False when there is none
   * due by `limit` (time then moves to `limit`).
   */
  fireNext(limit: number): boolean {
    this.#skipCancelled();
    const t = this.#heap.peek();
    if (t === undefined || t.at > limit) {
      this.#now = Math.max(this.#now, limit);
      return false;
    }
    this.#heap.pop();
    this.#now = Math.max(this.#now, t.at);
    if (t.every > 0) {
      t.at = this.#now + t.every;
      t.seq = ++this.#seq;
      this.#heap.push(t);
    } else {
      this.#live.delete(t.id);
    }
    t.fn();
    return true;
  }

  /** @internal */
  get now(): number {
    return this.#now;
  }
}

/** One process's view of the {@link SimClock}. */
export class ProcessClock implements Clock {
  readonly #sim: SimClock;
  #dead = false;

  constructor(sim: SimClock) {
    this.#sim = sim;
  }

  now(): number {
    return EPOCH_MS + this.#sim.now;
  }

  monotonic(): number {
    return this.#sim.now;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    return this.#dead ? 0 : this.#sim.add(this, fn, ms, 0);
  }

  clearTimeout(id: TimerId | undefined): void {
    this.#sim.cancel(id);
  }

  setInterval(fn: () => void, ms: number): TimerId {
    return this.#dead ? 0 : this.#sim.add(this, fn, ms, Math.max(1, ms));
  }

  clearInterval(id: TimerId | undefined): void {
    this.#sim.cancel(id);
  }

  /** True once the process died. */
  get dead(): boolean {
    return this.#dead;
  }

  /** The process died: its timers never fire, and new ones are never set. */
  kill(): void {
    this.#dead = true;
    this.#sim.cancelAll(this);
  }
}

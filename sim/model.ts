/**
 * The reference model of the object store, shared by the model-based store
 * tests (`tests/storage/store_model.ts`) and the simulator: what a write does
 * to an object's bytes ({@link writeRange}), random object contents, and, for
 * the simulator, the set of states each key may be in ({@link PairModel}).
 *
 * A write the client saw acknowledged happened; one refused before anything
 * was logged (403, 412, 507) did not; one whose answer never came (a crash, a
 * 503 after it was logged, a lost connection) may or may not have happened,
 * so each key holds every state its history allows. A read must return one
 * of them, and every acknowledged write is in all of them.
 *
 * @module
 */
import type { Prng } from "../src/runtime/random.ts";

/**
 * `old` with `data` written at `offset`: the object grows as needed and a gap
 * reads as zeros.
 *
 * @example
 * ```ts
 * import { writeRange } from "./model.ts";
 * writeRange(new Uint8Array([1, 2]), 3, new Uint8Array([9])); // [1, 2, 0, 9]
 * ```
 */
export function writeRange(
  old: Uint8Array | null | undefined,
  offset: number,
  data: Uint8Array,
): Uint8Array {
  const base = old ?? new Uint8Array(0);
  const next = new Uint8Array(Math.max(base.length, offset + data.length));
  next.set(base);
  next.set(data, offset);
  return next;
}

/**
 * Random object bytes: random data with, sometimes, all-zero 4 KiB blocks
 * (stored as holes) or all zeros.
 *
 * @example
 * ```ts
 * import { objectBytes } from "./model.ts";
 * import { Prng } from "../src/runtime/random.ts";
 * const body = objectBytes(new Prng(1), 10_000);
 * ```
 */
export function objectBytes(rng: Prng, size: number): Uint8Array {
  if (size > 0 && rng.chance(0.05)) return new Uint8Array(size); // all zeros
  const out = rng.bytes(size);
  if (size >= 8192 && rng.chance(0.4)) {
    const blocks = Math.floor(size / 4096);
    for (let k = rng.range(1, 3); k > 0; k--) {
      const b = rng.int(blocks);
      out.fill(0, b * 4096, (b + 1) * 4096);
    }
  }
  return out;
}

/** An object's bytes, or null when it does not exist. */
export type ObjectState = Uint8Array | null;

/** What a client learned of a write. */
export type Outcome = "applied" | "maybe" | "not";

/** Beyond this many possible states a key is no longer checked (until a whole PUT or DELETE). */
const MAX_STATES = 32;

/** Cheap identity of a state for deduplication (length and FNV-1a). */
function fingerprint(s: ObjectState): string {
  if (s === null) return "-";
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s[i], 0x01000193);
  return `${s.length}:${h >>> 0}`;
}

/**
 * True when two states are the same (both absent, or the same bytes).
 *
 * @example
 * ```ts
 * import { equal } from "./model.ts";
 * equal(new Uint8Array([1]), new Uint8Array([1])); // true
 * equal(null, new Uint8Array(0)); // false: absent is not empty
 * ```
 */
export function equal(a: ObjectState, b: ObjectState): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The possible states of every key of a pair.
 *
 * @example
 * ```ts
 * import { PairModel } from "./model.ts";
 * const model = new PairModel();
 * model.apply("a", () => new Uint8Array([1]), "maybe"); // a 503: absent or [1]
 * model.check("a", null); // null (possible)
 * model.apply("a", () => null, "applied"); // an acknowledged DELETE
 * model.check("a", new Uint8Array([1])); // "…is not one of the 1 possible states"
 * ```
 */
export class PairModel {
  /** Keys not listed are absent; a key mapped to null is not checked (too many states). */
  #states = new Map<string, ObjectState[] | null>();

  /** Every key ever written. */
  keys(): string[] {
    return [...this.#states.keys()];
  }

  /** The possible states of `key`, or null when it is not checked. */
  states(key: string): ObjectState[] | null {
    return this.#states.has(key) ? this.#states.get(key)! : [null];
  }

  /** Records a write or delete of `key` (`effect` maps a state to the next one). */
  apply(
    key: string,
    effect: (s: ObjectState) => ObjectState,
    outcome: Outcome,
    whole = false,
  ): void {
    if (outcome === "not") return;
    const before = this.states(key);
    if (before === null) {
      // Unknown: only a whole PUT or DELETE that is known to be applied makes it known again.
      if (outcome === "applied" && whole) this.#states.set(key, [effect(null)]);
      return;
    }
    const after = before.map(effect);
    const next = outcome === "applied" ? after : [...before, ...after];
    const seen = new Set<string>();
    const unique = next.filter((s) => {
      const f = fingerprint(s);
      if (seen.has(f)) return false;
      seen.add(f);
      return true;
    });
    this.#states.set(key, unique.length > MAX_STATES ? null : unique);
  }

  /** Null when `got` (null: absent) is a possible state of `key`, else what is wrong. */
  check(key: string, got: ObjectState, range?: { start: number; end: number }): string | null {
    const states = this.states(key);
    if (states === null) return null;
    const ok = states.some((s) => {
      if (range === undefined || s === null || got === null) return equal(s, got);
      return equal(s.subarray(range.start, Math.min(range.end, s.length)), got);
    });
    if (ok) return null;
    const describe = (s: ObjectState) => (s === null ? "absent" : `${s.length} bytes`);
    return `'${key}'${range ? ` [${range.start}, ${range.end})` : ""} is ${describe(got)} (${
      fingerprint(got)
    }), not one of the ${states.length} possible states (${states.map(describe).join(", ")})`;
  }
}

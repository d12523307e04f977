/**
 * The reference model of the object API, shared by the store's model-based
 * tests, the crash and torn-write tests and the mirror tests: what every key
 * holds after a sequence of whole PUTs, ranged writes and DELETEs, and the
 * order `list` returns keys in. A ranged write extends the object, and a gap
 * it leaves reads as zeros (`writeRange` of sim/model.ts). A write whose
 * answer was lost (the process was killed) is the "maybe" outcome of
 * sim/model.ts: the key holds its content before or after it ({@link
 * Model.send}, {@link Model.settle}).
 *
 * @example
 * ```ts
 * import { Model } from "./model.ts";
 *
 * const model = new Model();
 * model.put("a", new Uint8Array([1, 2]));
 * model.write("a", 4, new Uint8Array([9])); // [1, 2, 0, 0, 9]
 * model.delete("a");
 * console.log(model.objects.has("a"), model.deleted.has("a")); // false true
 * ```
 *
 * @module
 */
import { equal, type ObjectState, type Outcome, writeRange } from "../../sim/model.ts";
import { compareUtf8 } from "./bytes.ts";

/** What an object should hold: bytes, or a pseudo-random stream (too big to keep). */
export type Expected =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "random"; seed: number; size: number; chunk: number; etag: string };

/** A write that was sent and not answered: the state it makes, and what it was. */
export interface InFlight {
  next: ObjectState;
  what: string;
}

/** The expected content of every key (absent = must be 404). */
export class Model {
  readonly objects = new Map<string, Expected>();
  /** Keys that existed once and were deleted (checked to be 404). */
  readonly deleted = new Set<string>();
  /** Sent, not answered: the state each key would have if it happened. */
  readonly #inflight = new Map<string, InFlight>();

  put(key: string, bytes: Uint8Array): void {
    this.objects.set(key, { kind: "bytes", bytes });
    this.deleted.delete(key);
  }

  putRandom(key: string, seed: number, size: number, chunk: number, etag: string): void {
    this.objects.set(key, { kind: "random", seed, size, chunk, etag });
    this.deleted.delete(key);
  }

  /** A ranged write (`writeRange` of sim/model.ts). */
  write(key: string, offset: number, data: Uint8Array): void {
    this.put(key, writeRange(this.bytes(key), offset, data));
  }

  delete(key: string): void {
    this.objects.delete(key);
    this.deleted.add(key);
  }

  /**
   * A write or DELETE of `key` that was sent and not yet answered: `next` is
   * what the key holds if it happened (`what` names it in messages). {@link
   * ack} when the answer comes, or {@link settle} after a crash.
   *
   * @example
   * ```ts
   * import { Model } from "./model.ts";
   * const model = new Model();
   * model.send("a", new Uint8Array([1]), "PUT of 1 byte");
   * // killed before the answer; after the restart GET gave 404:
   * console.log(model.settle("a", null)); // "not"
   * ```
   */
  send(key: string, next: ObjectState, what = "write"): void {
    this.#inflight.set(key, { next, what });
  }

  /** The write of `key` in flight, if any. */
  inflight(key: string): InFlight | undefined {
    return this.#inflight.get(key);
  }

  /** The answer came (2xx): the write in flight happened. */
  ack(key: string): void {
    const next = this.#inflight.get(key)?.next;
    if (next === undefined) throw new Error(`no write of '${key}' in flight`);
    this.#inflight.delete(key);
    if (next === null) this.delete(key);
    else this.put(key, next);
  }

  /**
   * After a crash `key` holds `got` (null: absent): whether its write in
   * flight happened ("applied", now the content) or not ("not"), or null when
   * `got` is neither state (nothing changes then). A key with nothing in
   * flight must hold its content. For keys of bytes (`put`, `write`), not
   * random streams.
   */
  settle(key: string, got: ObjectState): Exclude<Outcome, "maybe"> | null {
    const next = this.#inflight.get(key)?.next;
    if (next !== undefined && equal(got, next)) {
      this.ack(key);
      return "applied";
    }
    if (!equal(got, this.bytes(key))) return null;
    this.#inflight.delete(key);
    return "not";
  }

  /** A copy (the in-flight writes are not copied). */
  clone(): Model {
    const copy = new Model();
    for (const [k, v] of this.objects) copy.objects.set(k, v);
    for (const k of this.deleted) copy.deleted.add(k);
    return copy;
  }

  /** The bytes of a small object, or null (absent or a random stream). */
  bytes(key: string): Uint8Array | null {
    const e = this.objects.get(key);
    return e?.kind === "bytes" ? e.bytes : null;
  }

  /** Keys in UTF-8 byte order (the list order of the API). */
  sortedKeys(): string[] {
    return [...this.objects.keys()].sort(compareUtf8);
  }
}

/**
 * The reference model of the object API, shared by the store's model-based
 * tests, the crash and torn-write tests and the mirror tests: what every key
 * holds after a sequence of whole PUTs, ranged writes and DELETEs, and the
 * order `list` returns keys in. A ranged write extends the object, and a gap
 * it leaves reads as zeros (`writeRange` of sim/model.ts).
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
import { writeRange } from "../../sim/model.ts";
import { compareUtf8 } from "./bytes.ts";

/** What an object should hold: bytes, or a pseudo-random stream (too big to keep). */
export type Expected =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "random"; seed: number; size: number; chunk: number; etag: string };

/** The expected content of every key (absent = must be 404). */
export class Model {
  readonly objects = new Map<string, Expected>();
  /** Keys that existed once and were deleted (checked to be 404). */
  readonly deleted = new Set<string>();

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

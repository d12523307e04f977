/**
 * The one assertion of the code base: `assert(cond, msg)` states an invariant
 * where it can break. A failure is a bug here (or a peer breaking the
 * protocol in a way no check before it caught), never a client's fault: it
 * is an {@link AssertionError}, not a `RefsyncError`, so the HTTP layer
 * answers it with a logged 500.
 *
 * @example
 * ```ts
 * import { assert } from "./assert.ts";
 *
 * function next(cp: number, proposed: number): number {
 *   assert(proposed === cp + 1, `CP ${proposed} follows CP ${cp}`);
 *   return proposed;
 * }
 * next(4, 5);
 * ```
 *
 * @module
 */

/** A broken invariant. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws an {@link AssertionError} (`invariant: msg`) unless `cond`. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new AssertionError(`invariant: ${msg}`);
}

/**
 * The assertions these tests use, on top of node:assert/strict.
 *
 * @module
 */
import assertNode from "node:assert/strict";

/** Throws unless `cond`. */
export function assert(cond: unknown, message?: string): asserts cond {
  assertNode.ok(cond, message);
}

/** Deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assertNode.deepStrictEqual(actual, expected, message);
}

/** Throws unless `fn` throws an instance of `type`. */
export function assertThrows(fn: () => unknown, type: new (...args: never[]) => Error): void {
  assertNode.throws(fn, type);
}

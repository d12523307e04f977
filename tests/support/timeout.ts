/**
 * Time bounds for tests: an AbortSignal that fires after a delay (cleared
 * when done, so the op sanitizer sees no stray timer) and a sleep.
 *
 * @module
 */

/**
 * Runs `fn` with a signal that aborts after `ms`; the timer is always cleared.
 *
 * @example
 * ```ts
 * const res = await withDeadline(60_000, (signal) => fetch(url, { signal }));
 * ```
 */
export async function withDeadline<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`deadline of ${ms} ms passed`)),
    ms,
  );
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

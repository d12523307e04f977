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
export async function withDeadline<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
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

/** Resolves after `ms`, or at once when `signal` aborts (the timer is then cleared). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * A request body that must keep moving: a client that stops sending for
 * `--body-idle-timeout` is cut off with `request_timeout` (408) instead of
 * holding a writer, its log transaction and its connection for ever. The
 * store applies nothing of a body that ends in an error.
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../errors/mod.ts";
import { type Clock, deadline, systemClock } from "../runtime/clock.ts";

/** Default of `--body-idle-timeout` (ms). */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 30_000;

/**
 * `body`, erroring with `request_timeout` when no chunk arrives for `idleMs`
 * while it is being read (the time the reader spends elsewhere does not
 * count), and with `bad_request` when it breaks off (a connection lost
 * mid-body). Cancelling the result cancels `body`.
 *
 * @example
 * ```ts
 * const stalled = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
 * const body = withIdleTimeout(stalled, 50);
 * await body!.getReader().read().catch((e) => e.code); // "request_timeout"
 * ```
 */
export function withIdleTimeout(
  body: ReadableStream<Uint8Array> | null,
  idleMs: number,
  clock: Clock = systemClock,
): ReadableStream<Uint8Array> | null {
  if (body === null) return null;
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await deadline(
          reader.read(),
          idleMs,
          () =>
            new RefsyncError(
              "request_timeout",
              `the request body made no progress for ${idleMs} ms (--body-idle-timeout)`,
            ),
          clock,
        );
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (e) {
        // A body that breaks off (the peer went away) is the sender's failure, not ours.
        const error = e instanceof RefsyncError
          ? e
          : new RefsyncError("bad_request", `the request body broke off: ${errorMessage(e)}`);
        // Stop the transfer: the pending read ends, and the connection with it.
        reader.cancel(error).catch(() => {});
        controller.error(error);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * A request body that stalls is cut with request_timeout (408), and the
 * stalled source is cancelled; a body that keeps moving is passed through.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../src/errors/mod.ts";
import { withIdleTimeout } from "../../src/http/body-timeout.ts";

Deno.test("body idle timeout: a moving body passes, a stalled one errors and is cancelled", async () => {
  assert.equal(withIdleTimeout(null, 10), null);
  const chunks = [new Uint8Array([1]), new Uint8Array([2, 3])];
  const moving = withIdleTimeout(ReadableStream.from(chunks), 1000)!;
  const got: number[] = [];
  for await (const c of moving) got.push(...c);
  assert.deepEqual(got, [1, 2, 3]);

  let cancelled: unknown = null;
  let sent = 0;
  const stalls = new ReadableStream<Uint8Array>({
    pull(controller) {
      // One chunk, then nothing more: a client that stopped sending.
      if (sent++ === 0) controller.enqueue(new Uint8Array([9]));
      else return new Promise(() => {});
    },
    cancel(reason) {
      cancelled = reason;
    },
  }, { highWaterMark: 0 });
  const reader = withIdleTimeout(stalls, 50)!.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([9]));
  const started = performance.now();
  await assert.rejects(reader.read(), (e) => isError(e, "request_timeout"));
  assert.ok(performance.now() - started >= 45, "cut only after the idle bound");
  assert.ok(isError(cancelled, "request_timeout"), "the stalled body is cancelled");
});

Deno.test("body idle timeout: a body that breaks off is the sender's bad_request, not a 500", async () => {
  let sent = 0;
  const breaks = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ === 0) controller.enqueue(new Uint8Array([1]));
      else controller.error(new TypeError("connection closed before message completed"));
    },
  });
  const reader = withIdleTimeout(breaks, 1000)!.getReader();
  assert.deepEqual((await reader.read()).value, new Uint8Array([1]));
  await assert.rejects(
    reader.read(),
    (e) => isError(e, "bad_request") && /broke off: connection closed/.test((e as Error).message),
  );
});

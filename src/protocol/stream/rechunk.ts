/**
 * Re-chunks a request body into pieces of a fixed size (the store logs a
 * body as records of at most 1 MiB), reading it as it comes: a body is never
 * held whole in memory.
 *
 * @example
 * ```ts
 * import { rechunk } from "./rechunk.ts";
 *
 * const body = ReadableStream.from([new Uint8Array(3), new Uint8Array(5)]);
 * for await (const piece of rechunk(body, 4, 8)) console.log(piece.length); // 4, 4
 * ```
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../../errors/mod.ts";

/**
 * Re-chunks a byte stream into pieces of `size` bytes (the last may be
 * shorter). Buffers are sized to what is coming: to the announced length when
 * there is one, else grown from 64 KiB, so a 4 KiB PUT never allocates and
 * zeroes a whole record's worth.
 */
export async function* rechunk(
  body: ReadableStream<Uint8Array> | null,
  size: number,
  expected: number | undefined,
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  let remaining = expected;
  const capacity = () =>
    remaining === undefined ? Math.min(size, 64 << 10) : Math.min(size, Math.max(remaining, 1));
  let buf = new Uint8Array(capacity());
  let spare: Uint8Array<ArrayBuffer> | null = null;
  let fill = 0;
  for await (const chunk of readBody(body)) {
    let off = 0;
    while (off < chunk.length) {
      if (fill === buf.length) {
        if (buf.length < size && remaining === undefined) {
          const grown = new Uint8Array(Math.min(size, buf.length * 2));
          grown.set(buf);
          buf = grown;
        } else {
          yield buf;
          if (remaining !== undefined) remaining = Math.max(0, remaining - buf.length);
          // The consumer holds at most the piece it is logging and the one read ahead,
          // so full-size buffers alternate instead of churning 1 MiB allocations.
          const reuse = spare !== null && spare.length === capacity() ? spare : null;
          spare = buf.length === size ? buf : null;
          buf = reuse ?? new Uint8Array(capacity());
          fill = 0;
        }
      }
      const n = Math.min(buf.length - fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/**
 * The body's chunks; a body that breaks off (client gone) is `bad_request`, not an
 * internal error. A body that fails with a domain error (a stalled client cut
 * off with `request_timeout`) keeps its code.
 */
async function* readBody(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  try {
    while (true) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (e) {
        if (e instanceof RefsyncError) throw e;
        throw new RefsyncError("bad_request", `the request body ended early: ${errorMessage(e)}`);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Stopped early (a limit, a bad range): cancel the rest of the body.
    await reader.cancel().catch(() => {});
  }
}

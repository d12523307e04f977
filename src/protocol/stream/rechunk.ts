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
 * zeroes a whole record's worth. Every piece is a fresh buffer from `alloc`,
 * never reused, so the consumer may keep it: the store has `alloc` place each
 * piece where its log frame's payload goes, and the bytes are copied once, from
 * the body's chunk into the frame.
 *
 * @example
 * ```ts
 * const body = ReadableStream.from([new Uint8Array(6)]);
 * const frames: ArrayBuffer[] = [];
 * const alloc = (n: number) => {
 *   frames.push(new ArrayBuffer(8 + n)); // room for an 8-byte header before each piece
 *   return new Uint8Array(frames[frames.length - 1], 8);
 * };
 * for await (const piece of rechunk(body, 4, 6, alloc)) console.log(piece.byteOffset); // 8, 8
 * ```
 */
export async function* rechunk(
  body: ReadableStream<Uint8Array> | null,
  size: number,
  expected: number | undefined,
  alloc: (length: number) => Uint8Array = (n) => new Uint8Array(n),
): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  let remaining = expected;
  const capacity = () =>
    remaining === undefined ? Math.min(size, 64 << 10) : Math.min(size, Math.max(remaining, 1));
  let buf = alloc(capacity());
  let fill = 0;
  for await (const chunk of readBody(body)) {
    let off = 0;
    while (off < chunk.length) {
      if (fill === buf.length) {
        if (buf.length < size && remaining === undefined) {
          const grown = alloc(Math.min(size, buf.length * 2));
          grown.set(buf);
          buf = grown;
        } else {
          yield buf;
          if (remaining !== undefined) remaining = Math.max(0, remaining - buf.length);
          buf = alloc(capacity());
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

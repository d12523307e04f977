/**
 * The destination's side of link compression: turns a replication request's
 * body into the bytes the source encoded, counting the bytes received as they
 * came. It keeps one decompressor, for the current link epoch, and takes the
 * epoch's requests only in sequence: a gap or a repeat (a lost answer, a
 * duplicate) is refused before any byte is read, as `conflict` "link stream
 * out of order; reconnect", and the source starts a new epoch.
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";
import { LINK_HEADER, RAW_LENGTH_HEADER, SEQ_HEADER } from "./headers.ts";
import { LONG_WINDOW_LOG, ZstdContext } from "./zstd.ts";

/** What one request's body may decode to. */
export interface DecodeOptions {
  /** At most this many decoded bytes (`too_large` beyond): bounds a "zip bomb". */
  maxBytes: number;
  /** Called with each received (still encoded) chunk's length: the wire counter. */
  received: (bytes: number) => void;
}

/** The epoch being decoded. */
interface Epoch {
  id: string;
  /** The sequence number the next request must carry. */
  next: number;
  ctx: ZstdContext;
  /** A request of it is being decoded: the next cannot be decoded until it is done. */
  busy: boolean;
}

/**
 * Decodes the link's request bodies.
 *
 * @example
 * ```ts
 * import { LinkDecoder } from "./decoder.ts";
 * declare const request: Request;
 * const decoder = new LinkDecoder();
 * let wireBytes = 0;
 * const body = decoder.decode(request.headers, request.body, {
 *   maxBytes: 64 << 20,
 *   received: (n) => wireBytes += n,
 * });
 * ```
 */
export class LinkDecoder {
  #epoch: Epoch | null = null;

  /**
   * The decoded body of a request with `headers` (Content-Encoding `identity`
   * or none, or `zstd`: one stream of an epoch when it has the link headers,
   * else self-contained frames). Throws a RefsyncError at once for a request
   * that cannot be decoded (an unknown encoding, out of sequence); a body that
   * fails to decode errors the stream and ends the epoch.
   */
  decode(
    headers: Headers,
    body: ReadableStream<Uint8Array> | null,
    opts: DecodeOptions,
  ): ReadableStream<Uint8Array> | null {
    if (!body) return null;
    const encoding = (headers.get("Content-Encoding") ?? "identity").trim().toLowerCase();
    if (encoding === "identity") return body.pipeThrough(counting(opts.received));
    if (encoding !== "zstd") {
      throw new RefsyncError(
        "bad_request",
        `Content-Encoding ${encoding} is not spoken here: send zstd or identity`,
      );
    }
    const length = rawLength(headers, opts.maxBytes);
    const id = headers.get(LINK_HEADER);
    if (id === null) {
      // Self-contained: a CP part, or a log batch that repeats itself (its long window is its own).
      const ctx = ZstdContext.decompressor(LONG_WINDOW_LOG);
      return this.#decoded(body, ctx, length, opts, null);
    }
    const epoch = this.#enter(id, headers.get(SEQ_HEADER));
    return this.#decoded(body, epoch.ctx, length, opts, epoch);
  }

  /** The epoch of a request `id`/`seqText`, which takes its turn, or a refusal. */
  #enter(id: string, seqText: string | null): Epoch {
    const seq = Number(seqText);
    if (seqText === null || !Number.isSafeInteger(seq) || seq < 0 || id === "") {
      throw new RefsyncError(
        "bad_request",
        `a link-compressed request needs ${LINK_HEADER}: <epoch> and ${SEQ_HEADER}: <n>`,
      );
    }
    if (seq === 0) {
      // A new epoch (the source reconnected): its stream starts from nothing.
      this.#end();
      this.#epoch = { id, next: 0, ctx: ZstdContext.decompressor(), busy: false };
    }
    const epoch = this.#epoch;
    if (epoch === null || epoch.id !== id || epoch.next !== seq || epoch.busy) {
      throw new RefsyncError(
        "conflict",
        "link stream out of order; reconnect",
        { epoch: id, seq, expected: epoch?.id === id && !epoch.busy ? epoch.next : null },
      );
    }
    epoch.next++;
    epoch.busy = true;
    return epoch;
  }

  /** Ends the epoch (its context may differ from the source's now). */
  #end(epoch: Epoch | null = this.#epoch): void {
    if (epoch === null) return;
    epoch.ctx.close();
    if (this.#epoch === epoch) this.#epoch = null;
  }

  /** The body decoded through `ctx` to exactly `length` bytes, one received chunk per pull. */
  #decoded(
    body: ReadableStream<Uint8Array>,
    ctx: ZstdContext,
    length: number,
    opts: DecodeOptions,
    epoch: Epoch | null,
  ): ReadableStream<Uint8Array> {
    const reader = body.getReader();
    let decoded = 0;
    /** Whole or broken off, this request is over: only a whole one keeps its epoch going. */
    const over = (whole: boolean) => {
      if (epoch === null) ctx.close();
      else if (whole) epoch.busy = false;
      else this.#end(epoch);
    };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) {
              if (decoded !== length) {
                throw new RefsyncError(
                  "bad_request",
                  `the compressed body decodes to ${decoded} bytes, not the ${length} announced`,
                );
              }
              over(true);
              controller.close();
              return;
            }
            opts.received(value.length);
            const out = await ctx.process(value, undefined, length - decoded);
            decoded += out.length;
            if (out.length > 0) {
              controller.enqueue(out);
              return;
            }
          }
        } catch (e) {
          over(false);
          reader.cancel().catch(() => {});
          controller.error(decodeError(e));
        }
      },
      cancel: async (reason) => {
        // The reader stopped early (a refused frame): the rest of the stream was never decoded.
        over(false);
        await reader.cancel(reason);
      },
    });
  }
}

/** The announced decoded length of a compressed body (at most `max`), or a refusal. */
function rawLength(headers: Headers, max: number): number {
  const text = headers.get(RAW_LENGTH_HEADER);
  const length = Number(text);
  if (text === null || !Number.isSafeInteger(length) || length < 0) {
    throw new RefsyncError(
      "bad_request",
      `a compressed request announces its decoded length: ${RAW_LENGTH_HEADER}: <bytes>`,
    );
  }
  if (length > max) {
    throw new RefsyncError("too_large", `a compressed body decodes to at most ${max} bytes`);
  }
  return length;
}

/** A decoder failure as the error the client gets: its body was wrong, not us. */
function decodeError(e: unknown): Error {
  if (e instanceof RefsyncError) return e;
  if (e instanceof Error && /zstd/i.test(e.message)) {
    return new RefsyncError("bad_request", `the compressed body does not decode: ${e.message}`);
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Passes chunks through, counting their bytes. */
function counting(received: (bytes: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      received(chunk.length);
      controller.enqueue(chunk);
    },
  });
}

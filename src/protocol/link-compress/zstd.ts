/**
 * One zstd context of `node:zlib`, kept across calls: each call feeds it one
 * input and resolves with what it produced up to a flush point. The sync
 * `zstdCompressSync` family builds and frees a context per call (about 0.4 ms
 * for a 64 KiB input here, 150 MiB/s); a kept context costs nothing per call
 * and can carry one stream across requests.
 *
 * @module
 */
import zlib from "node:zlib";
import { RefsyncError } from "../../errors/mod.ts";

const Z = zlib.constants;

/** Where a compressor stops after an input: a flush point of the stream, or the end of a frame. */
export const ZstdFlush = { stream: Z.ZSTD_e_flush, frame: Z.ZSTD_e_end } as const;

/** The decoder's window: at most 1 MiB (2^20) of history, so its memory is bounded. */
export const WINDOW_LOG = 20;
/**
 * The window of a self-contained log request that repeats its own content
 * (8 MiB: a whole batch, see `LinkEncoder.stream`), with long-distance
 * matching; its decoder holds at most this much for one request.
 */
export const LONG_WINDOW_LOG = 23;

/** The `node:zlib` stream of a context (only what is used here). */
type ZstdHandle = zlib.ZstdCompress | zlib.ZstdDecompress;

/**
 * A kept zstd compressor or decompressor.
 *
 * @example
 * ```ts
 * import { ZstdContext, ZstdFlush } from "./zstd.ts";
 * const enc = ZstdContext.compressor(1);
 * const dec = ZstdContext.decompressor();
 * const text = new TextEncoder().encode("a small record, a small record");
 * const wire = await enc.process(text, ZstdFlush.stream);
 * const back = await dec.process(wire);
 * console.log(back.length === text.length);
 * enc.close();
 * dec.close();
 * ```
 */
export class ZstdContext {
  readonly #handle: ZstdHandle;
  #failed: Error | null = null;
  #closed = false;
  /** The call before: calls take turns, since each listens to all the context's output. */
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(handle: ZstdHandle) {
    this.#handle = handle;
    // An error is reported by the call that caused it; an unlistened one would be uncaught.
    handle.on("error", (e: Error) => this.#failed ??= e);
  }

  /**
   * A compressor at `level`, its window bounded like the decoder's; `long`:
   * the {@link LONG_WINDOW_LOG} window with long-distance matching (level 1's
   * hash table alone finds few repeats megabytes apart).
   */
  static compressor(level: number, long = false): ZstdContext {
    const params = long
      ? { [Z.ZSTD_c_windowLog]: LONG_WINDOW_LOG, [Z.ZSTD_c_enableLongDistanceMatching]: 1 }
      : { [Z.ZSTD_c_windowLog]: WINDOW_LOG };
    return new ZstdContext(zlib.createZstdCompress({
      params: { [Z.ZSTD_c_compressionLevel]: level, ...params },
    }));
  }

  /** A decompressor that refuses a window larger than `windowLog` (default {@link WINDOW_LOG}). */
  static decompressor(windowLog: number = WINDOW_LOG): ZstdContext {
    return new ZstdContext(zlib.createZstdDecompress({
      params: { [Z.ZSTD_d_windowLogMax]: windowLog },
    }));
  }

  /**
   * Feeds `input` and resolves with everything it produced. A compressor
   * stops at `flush` ({@link ZstdFlush}); a decompressor decodes all of
   * `input`. More than `maxOut` bytes out fails (`too_large`) as soon as
   * they appear, so a small input that would expand without bound (a
   * "zip bomb") holds at most `maxOut` bytes of memory. After a failure the
   * context is unusable. Calls may overlap: they run in the order made.
   */
  process(
    input: Uint8Array,
    flush: number = ZstdFlush.stream,
    maxOut = Number.POSITIVE_INFINITY,
  ): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error("zstd context closed"));
    const run = this.#turn.then(() => this.#process(input, flush, maxOut));
    this.#turn = run.catch(() => {});
    return run;
  }

  #process(input: Uint8Array, flush: number, maxOut: number): Promise<Uint8Array> {
    if (this.#failed) return Promise.reject(this.#failed);
    const h = this.#handle;
    return new Promise<Uint8Array>((resolve, reject) => {
      const parts: Uint8Array[] = [];
      let size = 0;
      let settled = false;
      const finish = (e: Error | null) => {
        if (settled) return;
        settled = true;
        h.off("data", onData);
        h.off("error", finish);
        if (e) {
          this.#failed ??= e;
          reject(e);
        } else resolve(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      };
      const onData = (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > maxOut) {
          finish(
            new RefsyncError("too_large", `a compressed body decodes to more than ${maxOut} bytes`),
          );
          this.close(); // after this turn: it has failed, so the context is done with
          return;
        }
        parts.push(chunk);
      };
      h.on("data", onData);
      h.on("error", finish);
      h.write(input);
      h.flush(flush, () => finish(null));
    });
  }

  /** Frees the context once the call running now (if any) is done; later calls fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#turn.then(() => this.#handle.close());
  }
}

/**
 * Reads exact byte counts from a chunked stream, holding at most one
 * requested item plus one chunk in memory.
 *
 * @module
 */

/**
 * A pull reader over a byte stream.
 *
 * @example
 * ```ts
 * const body = ReadableStream.from([new Uint8Array(8)]);
 * const r = new ByteReader(body);
 * const header = await r.read(5); // null at a clean end of stream
 * ```
 */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #offset = 0;
  /** Bytes consumed so far. */
  consumed = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /**
   * Exactly `n` bytes (a fresh array), or null when the stream ended before
   * the first byte; throws when it ends in the middle.
   */
  async read(n: number): Promise<Uint8Array | null> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#offset === this.#chunk.length) {
        const { value, done } = await this.#reader.read();
        if (done) {
          if (filled === 0) return null;
          throw new Error(`stream ended inside an item: ${filled} of ${n} bytes`);
        }
        this.#chunk = value;
        this.#offset = 0;
        continue;
      }
      const take = Math.min(n - filled, this.#chunk.length - this.#offset);
      out.set(this.#chunk.subarray(this.#offset, this.#offset + take), filled);
      this.#offset += take;
      filled += take;
    }
    this.consumed += n;
    return out;
  }

  /** Exactly `n` bytes; throws at the end of the stream. */
  async readExact(n: number): Promise<Uint8Array> {
    const out = await this.read(n);
    if (out === null) throw new Error(`stream ended; ${n} more bytes expected`);
    return out;
  }

  /** Stops reading and releases the stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

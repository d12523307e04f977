/**
 * Reference BLAKE3 for the tests, from an independent implementation
 * (npm:blake3-wasm, mapped in deno.json), not the project's own wasm module:
 * an ETag the appliance computes is checked against this, and so is the way
 * the ETag is derived (`src/storage/objects/etag.ts`), restated here from its
 * definition rather than imported.
 *
 * Under Deno the package's Node entry (`dist/index.js`) loads; `hash()`
 * returns a Node Buffer, `createHash()` an incremental hasher whose
 * `digest("hex")` gives the hex string.
 *
 * @module
 */
import { createHash, hash } from "blake3-wasm";

/** Lower-case hex BLAKE3-256 of `data`. */
export function blake3Hex(data: Uint8Array): string {
  return (hash(data) as { toString(enc: string): string }).toString("hex");
}

const BLOCK = 4096;
const ETAG_DOMAIN = new TextEncoder().encode("refsync-etag-1");

/**
 * Lower-case hex of an object's ETag:
 * BLAKE3("refsync-etag-1" ++ BLAKE3(block 0) ++ ... ++ BLAKE3(block n-1) ++ tail ++ u64 LE size),
 * over its full 4 KiB blocks and the `size % 4096` bytes after them.
 */
export function etagHex(data: Uint8Array): string {
  const h = new StreamingEtag();
  h.update(data);
  return h.hex();
}

/** {@link etagHex} of a body fed in pieces (too large to hold). */
export class StreamingEtag {
  #h = createHash();
  #part = new Uint8Array(BLOCK);
  #partLen = 0;
  #bytes = 0;

  constructor() {
    this.#h.update(ETAG_DOMAIN);
  }

  /** Feeds `chunk`. */
  update(chunk: Uint8Array): void {
    for (let pos = 0; pos < chunk.length;) {
      const n = Math.min(BLOCK - this.#partLen, chunk.length - pos);
      this.#part.set(chunk.subarray(pos, pos + n), this.#partLen);
      this.#partLen += n;
      pos += n;
      if (this.#partLen === BLOCK) {
        this.#h.update(hash(this.#part) as Uint8Array);
        this.#partLen = 0;
      }
    }
    this.#bytes += chunk.length;
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Lower-case hex ETag of everything fed. */
  hex(): string {
    this.#h.update(this.#part.subarray(0, this.#partLen));
    const size = new Uint8Array(8);
    new DataView(size.buffer).setBigUint64(0, BigInt(this.#bytes), true);
    this.#h.update(size);
    return this.#h.digest("hex");
  }
}

/** The hex value of an `ETag` header (`"abc"`, `W/"abc"` or bare), or null. */
export function etagValue(header: string | null): string | null {
  if (header === null) return null;
  const m = /^(?:W\/)?"?([^"]*)"?$/.exec(header.trim());
  return m ? m[1] : header;
}

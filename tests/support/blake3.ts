/**
 * Reference BLAKE3 for the tests, from an independent implementation
 * (npm:blake3-wasm, mapped in deno.json), not the project's own wasm module:
 * an ETag the appliance computes is checked against this.
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

/** Incremental BLAKE3-256 (for bodies too large to hold). */
export class StreamingBlake3 {
  #h = createHash();
  #bytes = 0;

  /** Feeds `chunk`. */
  update(chunk: Uint8Array): void {
    this.#h.update(chunk);
    this.#bytes += chunk.length;
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Lower-case hex digest of everything fed. */
  hex(): string {
    return this.#h.digest("hex");
  }
}

/** The hex value of an `ETag` header (`"abc"`, `W/"abc"` or bare), or null. */
export function etagValue(header: string | null): string | null {
  if (header === null) return null;
  const m = /^(?:W\/)?"?([^"]*)"?$/.exec(header.trim());
  return m ? m[1] : header;
}

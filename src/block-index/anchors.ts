/**
 * Content-defined anchors: the positions of a payload where shifted content
 * is looked for. A position is an anchor when the 4 bytes there (a
 * little-endian u32) times 0x9e3779b1 have their top {@link ANCHOR_BITS}
 * bits zero (one position in 512 on average), a property of those bytes alone: content moved by any number of
 * bytes keeps its anchors, where 4 KiB-aligned blocks of it all change. The
 * scan runs in the block-diff wasm module (wasm/block-diff/assembly/anchors.ts).
 *
 * @module
 */
import { check, instantiate } from "../wasm/block-diff.ts";
import { MAX_PAYLOAD_LENGTH } from "../protocol/log-frame/mod.ts";

/** Top hash bits that must be zero: an anchor every 2^9 = 512 bytes on average. */
export const ANCHOR_BITS = 9;
/** Most anchors reported for one payload: degenerate content (a repeated pattern) stops there. */
export const MAX_ANCHORS = (MAX_PAYLOAD_LENGTH >> ANCHOR_BITS) * 4;

/**
 * Finds anchors in payloads of at most 1 MiB (a log record's); one wasm
 * instance of its own.
 *
 * @example
 * ```ts
 * import { AnchorFinder } from "./anchors.ts";
 * const finder = new AnchorFinder();
 * const data = crypto.getRandomValues(new Uint8Array(65536));
 * const shifted = new Uint8Array(65537);
 * shifted.set(data, 1);
 * const a = finder.find(data).slice();
 * const b = finder.find(shifted);
 * console.log(b[0] === a[0] + 1); // true: the same bytes, one further on
 * ```
 */
export class AnchorFinder {
  readonly #x = instantiate();
  readonly #input: Uint8Array;
  readonly #output: Uint32Array;

  constructor() {
    if (this.#x.anchorSetup(MAX_PAYLOAD_LENGTH, MAX_ANCHORS) !== 0) {
      throw new Error("AnchorFinder: wasm memory could not grow");
    }
    // Memory grows only in the setup above: these views stay valid.
    const buffer = this.#x.memory.buffer;
    this.#input = new Uint8Array(buffer, this.#x.anchorInput(), MAX_PAYLOAD_LENGTH);
    this.#output = new Uint32Array(buffer, this.#x.anchorOutput(), MAX_ANCHORS);
  }

  /**
   * The anchors of `bytes` in increasing order (each p with p + 4 <= length;
   * at most {@link MAX_ANCHORS}), a view valid until the next call.
   */
  find(bytes: Uint8Array): Uint32Array {
    check(
      bytes.length <= MAX_PAYLOAD_LENGTH,
      `AnchorFinder: payloads are at most ${MAX_PAYLOAD_LENGTH} bytes, got ${bytes.length}`,
    );
    this.#input.set(bytes);
    return this.#output.subarray(0, this.#x.anchorFind(bytes.length, ANCHOR_BITS));
  }
}

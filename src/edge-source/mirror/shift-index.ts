/**
 * Where content shifted by other than a multiple of 4 KiB may be held: a
 * block of an old object found again in a new payload at any byte offset
 * (an insertion or deletion before it moved it). The block locator finds
 * only 4 KiB-aligned repeats, by digest; this index finds candidates by the
 * content-defined anchors of src/block-index/anchors.ts.
 *
 * For each whole 4 KiB block of a forwarded payload, its first anchor (with
 * 32 bytes after it in the block) whose key is not taken is indexed: key = the 32 bytes at
 * the anchor, value = the block's digest and the anchor's offset in the
 * block, and a sketch of the block (8 bytes at each of four offsets that
 * span it). In a new payload, each anchor's 32 bytes are looked up; a hit at
 * position p with offset a says the held block may start at p - a, and is a
 * candidate when the sketch agrees there: text shares phrases across files,
 * and without the sketch most hits would be such a phrase, each costing a
 * block read to refute. The caller finds the block by its digest
 * (./block-locator.ts) and compares its bytes before naming it, as for any
 * hint: a stale or false candidate costs a comparison, never a wrong
 * reference.
 *
 * Payloads that look random (src/bytes/entropy.ts) are neither indexed nor
 * searched: random and compressed data seldom repeats shifted, and the scan
 * costs about 0.6 CPU s/GiB.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { looksRandom } from "../../bytes/entropy.ts";
import { AnchorFinder, MAX_ANCHORS } from "../../block-index/anchors.ts";
import { BlockIndex } from "../../block-index/mod.ts";

/** Bytes of an anchor's key. */
const KEY = 32;
/** Blocks indexed at most; beyond, the index starts over (memory is bounded: about 15 MiB). */
const MAX_ENTRIES = 1 << 17;
/** Offsets in a block of the sketch's four 8-byte samples: its start, its end, and between. */
const SKETCH = [0, 1360, 2728, BLOCK_SIZE - 8] as const;
const SKETCH_BYTES = 32;
/** Anchors of a block tried at most for a free key (text shares phrases, so keys collide). */
const MAX_TRIES = 4;

/** A block that may be held, starting at `at` of the payload searched. */
export interface ShiftCandidate {
  at: number;
  /** The held block's digest (a view, valid until the next {@link ShiftIndex.add}). */
  digest: Uint8Array;
}

/**
 * The source's anchor index.
 *
 * @example
 * ```ts
 * import { hashBlocks } from "../../hash/blake3.ts";
 * import { ShiftIndex } from "./shift-index.ts";
 * const text = new TextEncoder().encode(
 *   Array.from({ length: 3000 }, (_, i) => `line ${i * 7919 % 10007}\n`).join(""),
 * );
 * const shifts = new ShiftIndex();
 * const whole = text.subarray(0, 4096 * Math.floor(text.length / 4096));
 * shifts.add(text, hashBlocks(whole), shifts.anchorsOf(text)!, () => true);
 * const moved = new Uint8Array(text.length + 3);
 * moved.set(text, 3);
 * console.log(shifts.candidates(moved, shifts.anchorsOf(moved)!)[0].at); // 3
 * ```
 */
export class ShiftIndex {
  readonly #finder = new AnchorFinder();
  /** key -> slot of {@link #digests} and {@link #offsets}. */
  readonly #index = new BlockIndex(1 << 12);
  readonly #digests: Uint8Array;
  readonly #offsets: Uint16Array;
  readonly #sketches: Uint8Array;
  readonly #max: number;
  #next = 0;
  /** Keys and answers of one payload's lookups. */
  readonly #keys = new Uint8Array(MAX_ANCHORS * KEY);
  readonly #found = new Float64Array(MAX_ANCHORS);

  constructor(maxEntries = MAX_ENTRIES) {
    this.#max = maxEntries;
    this.#digests = new Uint8Array(maxEntries * 32);
    this.#offsets = new Uint16Array(maxEntries);
    this.#sketches = new Uint8Array(maxEntries * SKETCH_BYTES);
  }

  /** Blocks indexed. */
  get size(): number {
    return this.#index.size;
  }

  /**
   * The anchors of `payload` (a view, valid until the next call), or null
   * when it is not worth a search: shorter than a block, or random-looking.
   */
  anchorsOf(payload: Uint8Array): Uint32Array | null {
    if (payload.length < BLOCK_SIZE || looksRandom(payload)) return null;
    return this.#finder.find(payload);
  }

  /**
   * Blocks held elsewhere that may start in `payload` off the 4 KiB grid, in
   * increasing order of `at`, one per start; `anchors` from {@link anchorsOf}.
   */
  candidates(payload: Uint8Array, anchors: Uint32Array): ShiftCandidate[] {
    let n = 0;
    for (const p of anchors) {
      if (p + KEY > payload.length) break;
      this.#keys.set(payload.subarray(p, p + KEY), n * KEY);
      n++;
    }
    if (n === 0 || this.#index.size === 0) return [];
    const found = this.#found.subarray(0, n);
    this.#index.lookupBatch(this.#keys.subarray(0, n * KEY), found);
    const out: ShiftCandidate[] = [];
    for (let i = 0; i < n; i++) {
      const slot = found[i];
      if (slot < 0) continue;
      const at = anchors[i] - this.#offsets[slot];
      // Aligned starts are the block locator's; a block must fit.
      if (at < 0 || at % BLOCK_SIZE === 0 || at + BLOCK_SIZE > payload.length) continue;
      if (out.length > 0 && out[out.length - 1].at >= at) continue;
      if (!this.#sketchAgrees(slot, payload, at)) continue;
      out.push({ at, digest: this.#digests.subarray(slot * 32, slot * 32 + 32) });
    }
    return out;
  }

  /**
   * Indexes the whole blocks of `payload` (their digests, 32 bytes a block,
   * in `digests`) by their first anchor whose key is free; `anchors` from
   * {@link anchorsOf}. A key taken by a block that `held` still says is held
   * (the same content met before, at another alignment, or a phrase another
   * block shares) stays, and the block's next anchor is tried, up to four:
   * the first copy is the one a later move will be found in whole.
   */
  add(
    payload: Uint8Array,
    digests: Uint8Array,
    anchors: Uint32Array,
    held: (digest: Uint8Array) => boolean,
  ): void {
    const blocks = Math.min(digests.length / 32, Math.floor(payload.length / BLOCK_SIZE));
    if (this.#next + blocks > this.#max) this.#clear();
    let a = 0;
    for (let b = 0; b < blocks; b++) {
      const start = b * BLOCK_SIZE;
      while (a < anchors.length && anchors[a] < start) a++;
      // The first anchor of the block whose key is free (or taken by a block no longer held).
      for (let i = a, tries = 0; i < anchors.length && tries < MAX_TRIES; i++, tries++) {
        const p = anchors[i];
        if (p + KEY > start + BLOCK_SIZE) break; // none more in this block with its key inside
        const key = payload.subarray(p, p + KEY);
        const taken = this.#index.lookup(key);
        if (taken >= 0 && held(this.#digests.subarray(taken * 32, taken * 32 + 32))) continue;
        const slot = this.#next++;
        this.#digests.set(digests.subarray(b * 32, b * 32 + 32), slot * 32);
        this.#offsets[slot] = p - start;
        for (const [j, off] of SKETCH.entries()) {
          const from = start + off;
          this.#sketches.set(payload.subarray(from, from + 8), slot * SKETCH_BYTES + j * 8);
        }
        this.#index.insert(key, slot);
        break;
      }
    }
  }

  /** True when the block at `at` of `payload` has the sketch of the block in `slot`. */
  #sketchAgrees(slot: number, payload: Uint8Array, at: number): boolean {
    const sketch = this.#sketches;
    let k = slot * SKETCH_BYTES;
    for (const off of SKETCH) {
      for (let j = at + off; j < at + off + 8; j++) if (payload[j] !== sketch[k++]) return false;
    }
    return true;
  }

  #clear(): void {
    this.#index.clear();
    this.#next = 0;
  }
}

/**
 * Where content shifted by other than a multiple of 4 KiB may be held: a
 * block of an old object found again in a new payload at any byte offset
 * (an insertion or deletion before it moved it). The block locator finds
 * only 4 KiB-aligned repeats, by digest; this index finds candidates by the
 * content-defined anchors of src/block-index/anchors.ts.
 *
 * For each whole 4 KiB block of a forwarded payload, its first anchor (with
 * 32 bytes after it in the block) is indexed: key = the 32 bytes at the
 * anchor, value = the block's digest, the anchor's offset in the block, and
 * a sketch of the block (8 bytes at each of four offsets that span it). Text
 * shares phrases across files, so a key met before keeps its older blocks
 * in a chain behind the new one. In a new payload, each anchor's 32 bytes
 * are looked up; each of the key's 16 newest blocks, with offset a, says it
 * may start at p - a, and is a candidate when its sketch agrees there:
 * without the sketch most would be a shared phrase, each a block read to
 * refute. The caller finds the block by its digest
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
import { AnchorFinder, BlockIndex, MAX_ANCHORS } from "../../block-index/mod.ts";

/** Bytes of an anchor's key. */
const KEY = 32;
/** Blocks indexed at most; beyond, the index starts over (memory is bounded: about 16 MiB). */
const MAX_ENTRIES = 1 << 17;
/** Offsets in a block of the sketch's four 8-byte samples: its start, its end, and between. */
const SKETCH = [0, 1360, 2728, BLOCK_SIZE - 8] as const;
const SKETCH_BYTES = 32;
/** Blocks of one key looked at most, newest first (text shares phrases, so keys collide). */
const MAX_CHAIN = 16;

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
 * shifts.add(text, hashBlocks(whole), shifts.anchorsOf(text)!);
 * const moved = new Uint8Array(text.length + 3);
 * moved.set(text, 3);
 * console.log(shifts.candidates(moved, shifts.anchorsOf(moved)!)[0].at); // 3
 * ```
 */
export class ShiftIndex {
  readonly #finder = new AnchorFinder();
  /** key -> the newest slot indexed under it. */
  readonly #index = new BlockIndex(1 << 12);
  /** Per slot: the block's digest, its anchor's offset, its sketch, the older slot of its key (-1). */
  readonly #digests: Uint8Array;
  readonly #offsets: Uint16Array;
  readonly #sketches: Uint8Array;
  readonly #older: Int32Array;
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
    this.#older = new Int32Array(maxEntries);
  }

  /** Blocks indexed. */
  get size(): number {
    return this.#next;
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
   * increasing order of `at` (for one `at`, the newest indexed first);
   * `anchors` from {@link anchorsOf}.
   */
  candidates(payload: Uint8Array, anchors: Uint32Array): ShiftCandidate[] {
    let n = 0;
    for (const p of anchors) {
      if (p + KEY > payload.length) break;
      this.#keys.set(payload.subarray(p, p + KEY), n * KEY);
      n++;
    }
    if (n === 0 || this.#next === 0) return [];
    const found = this.#found.subarray(0, n);
    this.#index.lookupBatch(this.#keys.subarray(0, n * KEY), found);
    const out: Array<ShiftCandidate & { slot: number }> = [];
    for (let i = 0; i < n; i++) {
      // The blocks under this key, newest first: shared phrases put several there.
      for (let slot = found[i], depth = 0; slot >= 0 && depth < MAX_CHAIN; depth++) {
        const at = anchors[i] - this.#offsets[slot];
        // Aligned starts are the block locator's; a block must fit.
        const fits = at > 0 && at % BLOCK_SIZE !== 0 && at + BLOCK_SIZE <= payload.length;
        if (fits && this.#sketchAgrees(slot, payload, at)) {
          out.push({ at, slot, digest: this.#digests.subarray(slot * 32, slot * 32 + 32) });
        }
        slot = this.#older[slot];
      }
    }
    return out.sort((a, b) => a.at - b.at || b.slot - a.slot);
  }

  /**
   * Indexes the whole blocks of `payload` (their digests, 32 bytes a block,
   * in `digests`) by their first anchor; `anchors` from {@link anchorsOf}.
   * A key already indexed keeps its blocks: the new one comes first.
   */
  add(payload: Uint8Array, digests: Uint8Array, anchors: Uint32Array): void {
    const blocks = Math.min(digests.length / 32, Math.floor(payload.length / BLOCK_SIZE));
    if (this.#next + blocks > this.#max) this.#clear();
    let a = 0;
    for (let b = 0; b < blocks; b++) {
      const start = b * BLOCK_SIZE;
      while (a < anchors.length && anchors[a] < start) a++;
      if (a === anchors.length) break;
      const p = anchors[a];
      if (p + KEY > start + BLOCK_SIZE) continue; // none in this block with its key inside
      const key = payload.subarray(p, p + KEY);
      const slot = this.#next++;
      this.#older[slot] = this.#index.lookup(key);
      this.#digests.set(digests.subarray(b * 32, b * 32 + 32), slot * 32);
      this.#offsets[slot] = p - start;
      for (const [j, off] of SKETCH.entries()) {
        const from = start + off;
        this.#sketches.set(payload.subarray(from, from + 8), slot * SKETCH_BYTES + j * 8);
      }
      this.#index.insert(key, slot);
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

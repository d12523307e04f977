/**
 * Where content shifted by other than a multiple of 4 KiB may be held: a
 * block of an old object found again in a new payload at any byte offset
 * (an insertion or deletion before it moved it). The block locator finds
 * only 4 KiB-aligned repeats, by digest; this index offers candidates by the
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
import { AnchorFinder, BlockIndex } from "../../block-index/mod.ts";
import { MAX_PAYLOAD_LENGTH } from "../../protocol/log-frame/mod.ts";

/** Bytes of an anchor's key. */
const KEY = 32;
/** Blocks indexed at most; beyond, the index starts over (memory is bounded: about 16 MiB). */
const MAX_ENTRIES = 1 << 17;
/** Offsets in a block of the sketch's four 8-byte samples: its start, its end, and between. */
const SKETCH = [0, 1360, 2728, BLOCK_SIZE - 8] as const;
const SKETCH_BYTES = 32;
/** Whole blocks of a payload at most. */
const PAYLOAD_BLOCKS = MAX_PAYLOAD_LENGTH / BLOCK_SIZE;
/** Blocks of one key looked at most, newest first (text shares phrases, so keys collide). */
const MAX_CHAIN = 16;

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
 * const starts: number[] = [];
 * shifts.search(moved, shifts.anchorsOf(moved)!, (at) => starts.push(at) > 0);
 * console.log(starts[0]); // 3: the text's first block, 3 bytes on
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
  /** Keys, slots and the keys' older slots of one payload's blocks (the batch calls of {@link add}). */
  readonly #keys = new Uint8Array(PAYLOAD_BLOCKS * KEY);
  readonly #slots = new Float64Array(PAYLOAD_BLOCKS);
  readonly #found = new Float64Array(PAYLOAD_BLOCKS);

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
   * Offers `accept` the blocks held elsewhere that may start in `payload`
   * off the 4 KiB grid, in the order of the anchors that name them (for one
   * anchor, the newest block first); `anchors` from {@link anchorsOf}. A
   * block accepted (`accept` returns true: the caller named it) ends the
   * offers it would overlap, and the anchors inside it are not looked up:
   * a moved copy costs about one lookup a block, not one an anchor.
   */
  search(
    payload: Uint8Array,
    anchors: Uint32Array,
    accept: (at: number, digest: Uint8Array) => boolean,
  ): void {
    if (this.#next === 0) return;
    let free = 0; // the first offset no accepted block covers
    for (const p of anchors) {
      if (p + KEY > payload.length) break;
      if (p < free) continue; // a block starting at or before p would overlap
      let slot = this.#index.lookup(payload.subarray(p, p + KEY));
      // The blocks under this key, newest first: shared phrases put several there.
      for (let depth = 0; slot >= 0 && depth < MAX_CHAIN; depth++, slot = this.#older[slot]) {
        const at = p - this.#offsets[slot];
        // Aligned starts are the block locator's; a block must fit.
        if (at < free || at % BLOCK_SIZE === 0 || at + BLOCK_SIZE > payload.length) continue;
        if (!this.#sketchAgrees(slot, payload, at)) continue;
        if (accept(at, this.#digests.subarray(slot * 32, slot * 32 + 32))) {
          free = at + BLOCK_SIZE;
          break;
        }
      }
    }
  }

  /**
   * Indexes the whole blocks of `payload` (their digests, 32 bytes a block,
   * in `digests`) by their first anchor; `anchors` from {@link anchorsOf}.
   * A key already indexed keeps its blocks: the new one comes first.
   */
  add(payload: Uint8Array, digests: Uint8Array, anchors: Uint32Array): void {
    const whole = Math.min(digests.length / 32, Math.floor(payload.length / BLOCK_SIZE));
    const blocks = Math.min(whole, this.#max); // an index smaller than a payload (tests) keeps its start
    if (this.#next + blocks > this.#max) this.#clear();
    const keys = this.#keys;
    const slots = this.#slots;
    let n = 0;
    let a = 0;
    for (let b = 0; b < blocks; b++) {
      const start = b * BLOCK_SIZE;
      while (a < anchors.length && anchors[a] < start) a++;
      if (a === anchors.length) break;
      const p = anchors[a];
      if (p + KEY > start + BLOCK_SIZE) continue; // none in this block with its key inside
      const slot = this.#next++;
      for (let i = 0; i < KEY; i++) keys[n * KEY + i] = payload[p + i];
      slots[n++] = slot;
      this.#digests.set(digests.subarray(b * 32, b * 32 + 32), slot * 32);
      this.#offsets[slot] = p - start;
      let k = slot * SKETCH_BYTES;
      for (const off of SKETCH) {
        for (let j = start + off; j < start + off + 8; j++) this.#sketches[k++] = payload[j];
      }
    }
    if (n === 0) return;
    // One call each way for the payload's blocks. Two of them under one key (content that
    // repeats within the payload) chain to the older block, not to each other.
    const found = this.#found.subarray(0, n);
    this.#index.lookupBatch(keys.subarray(0, n * KEY), found);
    for (let i = 0; i < n; i++) this.#older[slots[i]] = found[i];
    this.#index.insertBatch(keys.subarray(0, n * KEY), slots.subarray(0, n));
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

/**
 * Content the simulator's workload writes again, so that both paths that
 * send references find bytes the destination already holds: the CP sync
 * (COPY, LOG_REF) and the log forwarding (reference frames). A small pool of
 * 4 KiB blocks, and the bodies written lately: written again whole under
 * other keys (small objects too), remixed (their aligned blocks at other
 * offsets, among fresh ones, ending with one's tail), or as aligned blocks
 * into other objects.
 *
 * @module
 */
import type { Prng } from "../src/runtime/random.ts";
import { BLOCK_SIZE } from "../src/bytes/mod.ts";

/** Bodies remembered (the newest are the likeliest repeats: the destination may still hold them in its log). */
const RECENT = 8;
/** Shorter bodies go whole on the link (a reference would save next to nothing): not worth repeating. */
const MIN_REPEAT = 256;

/**
 * One of `items` (oldest first), the newest likeliest, or null when there are none.
 *
 * @example
 * ```ts
 * import { pickRecent } from "./content.ts";
 * import { Prng } from "../src/runtime/random.ts";
 * pickRecent(["old", "new"], new Prng(1)); // "new" 3 times in 4
 * ```
 */
export function pickRecent<T>(items: readonly T[], rng: Prng): T | null {
  const n = items.length;
  return n === 0 ? null : items[n - 1 - Math.min(rng.int(n), rng.int(n))];
}

/**
 * The workload's repeated content, drawn from its generator.
 *
 * @example
 * ```ts
 * import { Repeats } from "./content.ts";
 * import { Prng } from "../src/runtime/random.ts";
 * const repeats = new Repeats(new Prng(1));
 * repeats.remember(new Prng(2).bytes(10_000));
 * const again = repeats.again(); // those 10 000 bytes
 * const remix = repeats.remix(20_000); // their two aligned blocks, and fresh bytes
 * ```
 */
export class Repeats {
  readonly #rng: Prng;
  /** Blocks reused under many keys and offsets. */
  readonly pool: Uint8Array[];
  #recent: Uint8Array[] = [];

  constructor(rng: Prng) {
    this.#rng = rng;
    this.pool = Array.from({ length: 6 }, () => rng.bytes(BLOCK_SIZE));
  }

  /** Remembers a body the workload wrote. */
  remember(body: Uint8Array): void {
    if (body.length < MIN_REPEAT) return;
    this.#recent.push(body);
    if (this.#recent.length > RECENT) this.#recent.shift();
  }

  /**
   * Bytes made of 4 KiB blocks from the pool: the same block under many
   * keys and offsets — also after the block it was first written to was
   * freed and reused, where only the content checks keep a stale hint out.
   */
  fromPool(size: number): Uint8Array {
    const out = new Uint8Array(size);
    for (let at = 0; at < size; at += BLOCK_SIZE) {
      out.set(this.#poolBlock().subarray(0, Math.min(BLOCK_SIZE, size - at)), at);
    }
    return out;
  }

  /** A copy of a body written lately (the newest likeliest), or null before the first. */
  again(): Uint8Array | null {
    const body = this.#body();
    return body && body.slice();
  }

  /**
   * About `size` bytes: aligned blocks of bodies written lately and fresh
   * ones, ending with the tail (the last partial block) of one of them.
   */
  remix(size: number): Uint8Array {
    const r = this.#rng;
    const tail = this.#body();
    const tailLength = tail === null ? 0 : tail.length % BLOCK_SIZE;
    const blocks = Math.max(1, Math.floor(size / BLOCK_SIZE));
    const out = new Uint8Array(blocks * BLOCK_SIZE + tailLength);
    for (let b = 0; b < blocks; b++) {
      out.set(r.chance(0.7) ? this.#block() : r.bytes(BLOCK_SIZE), b * BLOCK_SIZE);
    }
    if (tail !== null) out.set(tail.subarray(tail.length - tailLength), blocks * BLOCK_SIZE);
    return out;
  }

  /** 1 to 4 aligned blocks of bodies written lately (or of the pool): for a ranged write. */
  blocks(): Uint8Array {
    const out = new Uint8Array(this.#rng.range(1, 5) * BLOCK_SIZE);
    for (let at = 0; at < out.length; at += BLOCK_SIZE) out.set(this.#block(), at);
    return out;
  }

  /** A body written lately, the newest likeliest. */
  #body(): Uint8Array | null {
    return pickRecent(this.#recent, this.#rng);
  }

  /** An aligned block of a body written lately, or of the pool. */
  #block(): Uint8Array {
    const body = this.#body();
    const blocks = body === null ? 0 : Math.floor(body.length / BLOCK_SIZE);
    if (blocks === 0) return this.#poolBlock();
    const at = this.#rng.int(blocks) * BLOCK_SIZE;
    return body!.subarray(at, at + BLOCK_SIZE);
  }

  #poolBlock(): Uint8Array {
    return this.pool[this.#rng.int(this.pool.length)];
  }
}

/** Text bodies remembered for moved copies. */
const MOVED_RECENT = 4;

/**
 * Text-like bodies (letters and spaces: the shifted-content search skips
 * random-looking ones) and copies of those written lately with bytes
 * inserted or removed near their start: every block after the edit moves
 * off the 4 KiB grid, and the forwarding path names it where it landed
 * (src/edge-source/mirror/shift-index.ts). A stream of its own: trials that
 * do not draw it keep every other choice.
 *
 * @example
 * ```ts
 * import { Moves } from "./content.ts";
 * import { Prng } from "../src/runtime/random.ts";
 * const moves = new Moves(new Prng(1));
 * const a = moves.body(20_000); // text
 * const b = moves.body(20_000); // text, or a moved copy of `a`
 * ```
 */
export class Moves {
  readonly #rng: Prng;
  #recent: Uint8Array[] = [];

  constructor(rng: Prng) {
    this.#rng = rng;
  }

  /** True 3 times in 4: whether a fresh body is one of these. */
  chance(): boolean {
    return this.#rng.chance(0.75);
  }

  /**
   * At least `size` bytes and two blocks (a moved copy has its original's
   * length, give or take the edit).
   */
  body(size: number): Uint8Array {
    const r = this.#rng;
    const old = pickRecent(this.#recent, r);
    let out: Uint8Array;
    if (old !== null && r.chance(0.7)) {
      const removed = r.int(64);
      const inserted = this.#text(r.range(1, BLOCK_SIZE));
      out = new Uint8Array(inserted.length + old.length - removed);
      out.set(inserted);
      out.set(old.subarray(removed), inserted.length);
    } else out = this.#text(Math.max(size, 2 * BLOCK_SIZE + r.int(BLOCK_SIZE)));
    if (out.length >= 2 * BLOCK_SIZE) {
      this.#recent.push(out);
      if (this.#recent.length > MOVED_RECENT) this.#recent.shift();
    }
    return out;
  }

  /** Words of letters, a space after each (about 4.9 bits a byte). */
  #text(size: number): Uint8Array {
    const r = this.#rng;
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = r.chance(0.15) ? 0x20 : 0x61 + r.int(26);
    return out;
  }
}

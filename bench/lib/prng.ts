/**
 * Seeded, fast pseudo-random content for the benchmark: xorshift32 words.
 *
 * Every byte a workload sends is a pure function of (seed, id), so two runs
 * with the same seed send the same bytes, and a workload can resend the
 * content of an earlier block (the duplicate workload) without keeping it.
 *
 * @module
 */

/**
 * Mixes two 32-bit integers into one well-spread, non-zero 32-bit seed
 * (murmur3's finalizer).
 *
 * @example
 * ```ts
 * const seed = mixSeed(0x5eed, 42);
 * ```
 */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ (b >>> 0)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  return h === 0 ? 0x6d2b79f5 : h;
}

/**
 * Fills `out[from, from + length)` with xorshift32 output seeded by `seed`
 * (non-zero). Word-at-a-time when the range is 4-byte aligned in its buffer.
 */
export function fillXorshift(
  out: Uint8Array,
  seed: number,
  from = 0,
  length = out.length - from,
): void {
  let s = seed >>> 0 || 1;
  const start = out.byteOffset + from;
  let i = 0;
  if (start % 4 === 0) {
    const words = new Uint32Array(out.buffer, start, length >>> 2);
    for (let w = 0; w < words.length; w++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      words[w] = s;
    }
    i = words.length * 4;
  }
  for (; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[from + i] = s;
  }
}

/** Small seeded generator for the workloads' choices (offsets, sizes, repeats). */
export class Rng {
  // A typed array, not a number field: a state above 2^30 in a field is a heap number, and
  // allocating one per draw made draws ten times slower.
  #s = new Uint32Array(1);

  constructor(seed: number) {
    this.#s[0] = seed >>> 0 || 1;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let s = this.#s[0];
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (this.#s[0] = s) >>> 0;
  }

  /** Uniform float in [0, 1) (53 bits). */
  float(): number {
    return (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53;
  }

  /** Uniform integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** Log-uniform integer in [lo, hi] (lo >= 1): as many 1-10 as 10-100. */
  logInt(lo: number, hi: number): number {
    const x = Math.exp(Math.log(lo) + this.float() * (Math.log(hi + 1) - Math.log(lo)));
    return Math.min(hi, Math.floor(x));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** True with probability `p`, from one draw (cheaper than {@link chance}). */
  odds(p: number): boolean {
    return this.u32() < p * 2 ** 32;
  }

  /** Uniform integer in [0, n) from one draw (n <= 2^32; cheaper than {@link int}). */
  below(n: number): number {
    return Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** An index of `table`'s list: a {@link zipfTable} draw from one 32-bit word. */
  zipf(table: Uint16Array): number {
    return table[this.u32() >>> 16];
  }
}

/**
 * An inverse-CDF table for Zipf-like draws over `n` ranks (n <= 65536): rank
 * `r` comes with probability ln((r+2)/(r+1)) / ln(n+1), about 1/((r+1.5)
 * ln(n+1)): the rank distribution of words in real text. {@link Rng.zipf} picks from it with one table lookup.
 *
 * @example
 * ```ts
 * const table = zipfTable(1000);
 * const rank = new Rng(1).zipf(table); // 0 is the most likely
 * ```
 */
export function zipfTable(n: number): Uint16Array {
  if (!(n >= 1 && n <= 65536)) throw new RangeError(`zipfTable: ${n} ranks`);
  const table = new Uint16Array(65536);
  const span = Math.log(n + 1);
  // Log-uniform over [1, n+1): slot i is the rank at the middle of its probability slice.
  for (let i = 0; i < table.length; i++) {
    table[i] = Math.min(n, Math.floor(Math.exp(((i + 0.5) / table.length) * span))) - 1;
  }
  return table;
}

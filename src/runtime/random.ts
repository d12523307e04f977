/**
 * Randomness, behind one small interface: volume ids and generated tokens
 * come from {@link Random}. The appliances use {@link systemRandom} (the OS
 * CSPRNG); the simulator and the tests use {@link Prng}, seeded, so a seed
 * replays every choice.
 *
 * @module
 */

/** A source of random bytes. */
export interface Random {
  /** Fills `out` with random bytes and returns it. */
  fill<T extends Uint8Array>(out: T): T;
}

/**
 * The OS CSPRNG (`crypto.getRandomValues`).
 *
 * @example
 * ```ts
 * import { systemRandom } from "./random.ts";
 * const id = systemRandom.fill(new Uint8Array(16));
 * ```
 */
export const systemRandom: Random = {
  fill: (out) => {
    // getRandomValues takes at most 65536 bytes a call.
    for (let at = 0; at < out.length; at += 65536) {
      crypto.getRandomValues(out.subarray(at, Math.min(out.length, at + 65536)));
    }
    return out;
  },
};

/**
 * mulberry32: small, fast, seeded, deterministic (not for secrets).
 *
 * @example
 * ```ts
 * import { Prng } from "./random.ts";
 * const rng = new Prng(7);
 * const die = rng.range(1, 6);
 * const again = new Prng(7).range(1, 6); // the same number
 * ```
 */
export class Prng implements Random {
  #s: number;

  /** @param seed any integer (only the low 32 bits are used) */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] (both included). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A new generator seeded from this one (independent sub-streams). */
  fork(): Prng {
    return new Prng(this.u32());
  }

  /** Fills `out` with random bytes and returns it. */
  fill<T extends Uint8Array>(out: T): T {
    let i = 0;
    if (out.byteOffset % 4 === 0) {
      const words = new Uint32Array(out.buffer, out.byteOffset, out.length >>> 2);
      let s = this.#s;
      for (let w = 0; w < words.length; w++) {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        words[w] = t ^ (t >>> 14);
      }
      this.#s = s;
      i = words.length * 4;
    }
    for (; i + 4 <= out.length; i += 4) {
      const r = this.u32();
      out[i] = r;
      out[i + 1] = r >>> 8;
      out[i + 2] = r >>> 16;
      out[i + 3] = r >>> 24;
    }
    for (; i < out.length; i++) out[i] = this.u32();
    return out;
  }

  /** `n` fresh random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer> {
    return this.fill(new Uint8Array(n));
  }
}

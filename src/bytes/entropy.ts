/**
 * A cheap look at whether bytes are random-like (random, compressed,
 * encrypted): the byte entropy of a 4 KiB sample. Such data seldom repeats
 * shifted, so the forwarding path does not search it for shifted content
 * (src/edge-source/mirror/shift-index.ts), which would cost a scan of every
 * byte for nothing.
 *
 * @module
 */

/** Bytes sampled, from the middle of the input. */
const SAMPLE = 4096;
/**
 * Bits per byte at or above which a sample looks random. Uniform random bytes
 * measure about 7.95 on 4 KiB (the estimate is biased low); text and code 4-6,
 * executables and most binary formats 5-7.
 */
export const RANDOM_BITS_PER_BYTE = 7.5;

const counts = new Uint32Array(256);

/**
 * The empirical byte entropy, in bits per byte, of up to 4 KiB from the middle
 * of `bytes` (0 for empty input).
 *
 * @example
 * ```ts
 * import { sampledEntropy } from "./entropy.ts";
 * console.log(sampledEntropy(new Uint8Array(8192))); // 0
 * console.log(sampledEntropy(crypto.getRandomValues(new Uint8Array(8192))) > 7.5); // true
 * ```
 */
export function sampledEntropy(bytes: Uint8Array): number {
  const n = Math.min(bytes.length, SAMPLE);
  if (n === 0) return 0;
  const from = (bytes.length - n) >> 1;
  counts.fill(0);
  for (let i = from; i < from + n; i++) counts[bytes[i]]++;
  let sum = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b];
    if (c > 0) sum += c * Math.log2(c);
  }
  return Math.log2(n) - sum / n;
}

/**
 * True when a sample of `bytes` looks random ({@link RANDOM_BITS_PER_BYTE}).
 *
 * @example
 * ```ts
 * import { looksRandom } from "./entropy.ts";
 * console.log(looksRandom(new TextEncoder().encode("hello ".repeat(1000)))); // false
 * ```
 */
export function looksRandom(bytes: Uint8Array): boolean {
  return sampledEntropy(bytes) >= RANDOM_BITS_PER_BYTE;
}

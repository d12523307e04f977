/**
 * Seeded text for tests of content that compresses (code-like lines of
 * pseudo-words): the shifted-content search skips random-looking bytes.
 *
 * @example
 * ```ts
 * import { text } from "./text.ts";
 * text(1, 10_000).length; // 10000
 * ```
 *
 * @module
 */
import { Prng } from "../../src/runtime/random.ts";

const SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "xe", "zi", "qu", "st", "ph"];

/** `size` bytes of lines of pseudo-words, a pure function of `seed`. */
export function text(seed: number, size: number): Uint8Array<ArrayBuffer> {
  const rng = new Prng(seed);
  const enc = new TextEncoder();
  const out = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const words = Array.from({ length: 3 + rng.int(8) }, () => {
      const n = 1 + rng.int(4);
      return Array.from({ length: n }, () => SYLLABLES[rng.int(SYLLABLES.length)]).join("");
    });
    const line = enc.encode(`${"  ".repeat(rng.int(4))}${words.join(" ")}(${rng.int(1000)});\n`);
    out.set(line.subarray(0, size - at), at);
    at += line.length;
  }
  return out;
}

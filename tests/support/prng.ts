/**
 * Seeded randomness for deterministic tests: mulberry32, random byte
 * buffers, and a pull-based stream of pseudo-random bytes that never holds
 * more than one chunk in memory (for multi-GiB bodies).
 *
 * Every test that uses randomness takes its seed from {@link testSeed}, so a
 * failure can be replayed with `REFSYNC_SEED=<seed> deno test ...`.
 *
 * @module
 */

import { Prng } from "../../src/runtime/random.ts";

/** The seeded generator of the tests is the one the simulator uses. */
export { Prng };

/**
 * `() => number` in [0, 1) from `seed`, for code that takes such a function
 * (the same numbers as `new Prng(seed).float()`).
 *
 * @example
 * ```ts
 * import { uniform } from "./prng.ts";
 *
 * const next = uniform(42);
 * const coin = next() < 0.5;
 * ```
 */
export function uniform(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

/**
 * The seed of a test: `REFSYNC_SEED` when set (to replay a failure), else
 * `fallback` (a fixed default keeps CI deterministic).
 *
 * @example
 * ```ts
 * const seed = testSeed(0x5eed);
 * const rng = new Prng(seed);
 * ```
 */
export function testSeed(fallback: number): number {
  const text = Deno.env.get("REFSYNC_SEED");
  if (text === undefined || text === "") return fallback >>> 0;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`REFSYNC_SEED='${text}' is not an integer`);
  return n >>> 0;
}

/**
 * Runs `fn`; when it throws, the error message is prefixed with the seed, so
 * the failure can be replayed.
 */
export async function withSeed<T>(seed: number, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const hint = `[${name}] seed=${seed} (replay: REFSYNC_SEED=${seed} deno test --allow-all ...)`;
    console.error(hint);
    if (e instanceof Error) {
      e.message = `${hint}\n${e.message}`;
      throw e;
    }
    throw new Error(`${hint}\n${String(e)}`);
  }
}

/**
 * A seeded test body: `Deno.test(name, seeded(fallback, (seed) => ...))`.
 * The seed is {@link testSeed}`(fallback)`, and a failure names it (through
 * {@link withSeed}) so that it can be replayed.
 *
 * @example
 * ```ts
 * import { Prng, seeded } from "./prng.ts";
 *
 * Deno.test("sorting is stable", seeded(0x5eed, (seed) => {
 *   const rng = new Prng(seed);
 *   const xs = Array.from({ length: 100 }, () => rng.int(10));
 *   if (xs.toSorted().length !== 100) throw new Error("lost an element");
 * }));
 * ```
 */
export function seeded(
  fallback: number,
  fn: (seed: number) => unknown,
): (t: Deno.TestContext) => Promise<void> {
  const seed = testSeed(fallback);
  return (t) =>
    withSeed(seed, t.name, async () => {
      await fn(seed);
    });
}

/**
 * A stream of `total` pseudo-random bytes from `seed`, in chunks of
 * `chunkSize` (the last may be shorter). Pull-based: one chunk is generated
 * per read, so a 1 GiB body costs one chunk of memory. The same seed and
 * chunk size always give the same bytes.
 *
 * `onChunk` sees every chunk as it is handed out (e.g. to hash the body
 * while it is sent).
 *
 * @example
 * ```ts
 * const body = randomStream(7, 1 << 30, 1 << 20);
 * await fetch(url, { method: "PUT", body });
 * ```
 */
export function randomStream(
  seed: number,
  total: number,
  chunkSize = 1 << 20,
  onChunk?: (chunk: Uint8Array) => void,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  const rng = new Prng(seed);
  let sent = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      const n = Math.min(chunkSize, total - sent);
      const chunk = rng.bytes(n);
      sent += n;
      onChunk?.(chunk);
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

/**
 * Compares a byte stream against the same pseudo-random sequence
 * {@link randomStream} produces, chunk boundaries notwithstanding, holding
 * at most one generated chunk at a time. Returns the number of bytes read;
 * throws at the first difference (naming its offset).
 */
export async function compareWithRandom(
  stream: ReadableStream<Uint8Array>,
  seed: number,
  total: number,
  chunkSize = 1 << 20,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<number> {
  const rng = new Prng(seed);
  let expected: Uint8Array = new Uint8Array(0);
  let expectedAt = 0; // offset inside `expected`
  let generated = 0;
  let pos = 0;
  for await (const chunk of stream) {
    onChunk?.(chunk);
    let at = 0;
    while (at < chunk.length) {
      if (expectedAt === expected.length) {
        if (generated >= total) {
          throw new Error(`stream is longer than ${total} bytes (extra byte at offset ${pos})`);
        }
        const n = Math.min(chunkSize, total - generated);
        expected = rng.bytes(n);
        generated += n;
        expectedAt = 0;
      }
      const n = Math.min(chunk.length - at, expected.length - expectedAt);
      for (let i = 0; i < n; i++) {
        if (chunk[at + i] !== expected[expectedAt + i]) {
          throw new Error(
            `stream differs at offset ${pos + i}: got ${chunk[at + i]}, want ${
              expected[expectedAt + i]
            }`,
          );
        }
      }
      at += n;
      expectedAt += n;
      pos += n;
    }
  }
  if (pos !== total) throw new Error(`stream ended after ${pos} of ${total} bytes`);
  return pos;
}

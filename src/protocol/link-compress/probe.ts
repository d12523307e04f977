/**
 * The cheap probe that keeps incompressible data (random, already compressed)
 * off the compressor: zstd at level 1 spends about 1.2 CPU s/GiB on random
 * bytes to emit them unchanged, more than Deno's HTTP server spends taking the
 * body. A batch is sampled (three 4 KiB slices: start, middle, end) and the
 * sample compressed alone; a sample that shrinks less than {@link RAW_RATIO}
 * sends the batch raw.
 *
 * @module
 */
import { ZstdContext, ZstdFlush } from "./zstd.ts";

/** A sample compressed to more than this share of its size: the batch goes raw. */
export const RAW_RATIO = 0.9;
/** Batches smaller than this are not probed: small records compress through the shared history. */
export const PROBE_MIN_BYTES = 16 << 10;
const SLICE = 4096;

/**
 * Decides, per batch, whether compressing it pays.
 *
 * @example
 * ```ts
 * import { Probe } from "./probe.ts";
 * const probe = new Probe();
 * const random = crypto.getRandomValues(new Uint8Array(65536));
 * console.log(await probe.worthCompressing(random)); // false
 * probe.close();
 * ```
 */
export class Probe {
  /** Its own context: a probe must not enter the stream's history. */
  readonly #ctx = ZstdContext.compressor(1);

  /** False when a sample of `bytes` does not compress. */
  async worthCompressing(bytes: Uint8Array): Promise<boolean> {
    if (bytes.length < PROBE_MIN_BYTES) return true;
    const mid = (bytes.length >> 1) - (SLICE >> 1);
    const sample = new Uint8Array(3 * SLICE);
    sample.set(bytes.subarray(0, SLICE), 0);
    sample.set(bytes.subarray(mid, mid + SLICE), SLICE);
    sample.set(bytes.subarray(bytes.length - SLICE), 2 * SLICE);
    // One frame per sample (`frame` ends it): the context keeps no history between probes.
    const out = await this.#ctx.process(sample, ZstdFlush.frame);
    return out.length <= sample.length * RAW_RATIO;
  }

  close(): void {
    this.#ctx.close();
  }
}

/**
 * The source's side of link compression. Log batches go through one zstd
 * stream per link epoch, flushed at the end of each request, so the
 * destination decodes each request as it arrives and a small record
 * compresses against everything sent before it in the epoch. CP sync parts
 * are one zstd frame each (see {@link LinkEncoder.single}). Either goes raw
 * when the probe finds it incompressible.
 *
 * @module
 */
import { type Random, systemRandom } from "../../runtime/random.ts";
import { type Level, LevelPolicy } from "./level.ts";
import { Probe } from "./probe.ts";
import { ZstdContext, ZstdFlush } from "./zstd.ts";

/**
 * Compressed self-contained, a batch that repeats itself must come to at most
 * this share of its bytes, or it goes the usual way (the probe, the epoch).
 */
const REPEATS_RATIO = 0.9;
import { LINK_HEADER, RAW_LENGTH_HEADER, SEQ_HEADER } from "./headers.ts";

/**
 * The level of CP sync parts and of batches that repeat themselves: 1 (about
 * 360 MiB/s on real files, ratio 0.47; see docs/internals.md). Log batches
 * take the level {@link LevelPolicy} picks for the link.
 */
export const LEVEL = 1;

/** A request body as it goes on the wire, and the headers that say how to read it. */
export interface EncodedBody {
  body: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
}

/**
 * Encodes request bodies for the link.
 *
 * @example
 * ```ts
 * import { LinkEncoder } from "./encoder.ts";
 * const enc = new LinkEncoder();
 * const batch = new TextEncoder().encode('{"a":1}\n'.repeat(100));
 * const { body, headers } = await enc.stream(batch);
 * console.log(headers["Content-Encoding"], body.length < batch.length); // zstd true
 * enc.restart(); // the request failed: the next one opens a new epoch
 * enc.close();
 * ```
 */
export class LinkEncoder {
  readonly #random: Random;
  readonly #probe = new Probe();
  /** The single-frame compressor of CP parts: no history across parts. */
  readonly #frames = ZstdContext.compressor(LEVEL);
  /** The long-window compressor of log batches that repeat themselves, made at first use. */
  #repeats: ZstdContext | null = null;
  #stream: ZstdContext | null = null;
  /** The level of {@link LinkEncoder.#stream}. */
  #streamLevel: Level = 1;
  readonly #policy = new LevelPolicy();
  readonly #now: () => number;
  #epoch = "";
  #seq = 0;

  /** @param opts `now`: a monotonic clock in ms (the level policy's dwell and timings). */
  constructor(opts: { random?: Random; now?: () => number } = {}) {
    this.#random = opts.random ?? systemRandom;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** The zstd level log batches are compressed at (the epoch's; the policy's next). */
  get level(): Level {
    return this.#stream ? this.#streamLevel : this.#policy.level;
  }

  /**
   * The destination took `ms` to receive a log body of `wireBytes` bytes (it
   * says so on its answer): what the level policy knows of the link.
   */
  linkTimed(wireBytes: number, ms: number): void {
    this.#policy.received(wireBytes, ms);
  }

  /** The current epoch's id ("" before the first compressed request). */
  get epoch(): string {
    return this.#epoch;
  }

  /**
   * A log batch: raw when it does not compress, else the epoch's stream up to
   * a flush point, with its epoch and sequence number. Calls must not overlap
   * (requests go one at a time), and a request that failed must be followed
   * by {@link restart}: the destination's context may no longer equal ours.
   *
   * `repeats`: the batch repeats content of its own that dedup could not name
   * (the destination has not acknowledged it yet), and the destination
   * decodes a long window: it goes as one self-contained frame with an 8 MiB
   * window and long-distance matching, whatever the probe says of its bytes
   * (random blocks repeated compress, and the probe samples too little to
   * see a repeat megabytes away). Outside the epoch: its history is its own.
   */
  async stream(raw: Uint8Array, repeats = false): Promise<EncodedBody> {
    if (repeats) {
      this.#repeats ??= ZstdContext.compressor(LEVEL, true);
      const body = await this.#repeats.process(raw, ZstdFlush.frame);
      if (body.length <= raw.length * REPEATS_RATIO) return frame(body, raw.length);
    }
    if (!await this.#probe.worthCompressing(raw)) return identity(raw);
    // A new level needs a new context: the epoch restarts with it.
    const level = this.#policy.decide(this.#now());
    if (this.#stream !== null && level !== this.#streamLevel) this.restart();
    if (this.#stream === null) {
      this.#stream = ZstdContext.compressor(level);
      this.#streamLevel = level;
      this.#epoch = this.#random.fill(new Uint8Array(8)).toHex();
      this.#seq = 0;
    }
    // Taken before the await: a restart meanwhile (a handshake) must not renumber this request.
    const epoch = this.#epoch;
    const seq = this.#seq++;
    const started = this.#now();
    const body = await this.#stream.process(raw, ZstdFlush.stream).catch((e) => {
      this.restart();
      throw e;
    });
    const done = this.#now();
    this.#policy.compressed(level, raw.length, body.length, done - started, done);
    return {
      body: body as Uint8Array<ArrayBuffer>,
      headers: {
        "Content-Encoding": "zstd",
        [RAW_LENGTH_HEADER]: String(raw.length),
        [LINK_HEADER]: epoch,
        [SEQ_HEADER]: String(seq),
      },
    };
  }

  /**
   * A CP sync part: one self-contained zstd frame, or raw. Parts are about 4
   * MiB, where a frame of its own compresses within a percent of a shared
   * stream, and they must not share the log's stream: a CP sync runs beside
   * log forwarding (two requests in flight, arriving in either order), and a
   * refused part restarts the sync at part 0 without touching the log's epoch.
   */
  async single(raw: Uint8Array): Promise<EncodedBody> {
    if (!await this.#probe.worthCompressing(raw)) return identity(raw);
    const body = await this.#frames.process(raw, ZstdFlush.frame);
    // zstd emits incompressible blocks stored, so this only guards the probe's misses.
    if (body.length >= raw.length) return identity(raw);
    return frame(body, raw.length);
  }

  /** Drops the epoch: the next compressed batch starts a new one at sequence 0. */
  restart(): void {
    this.#stream?.close();
    this.#stream = null;
  }

  close(): void {
    this.restart();
    this.#frames.close();
    this.#repeats?.close();
    this.#probe.close();
  }
}

/** A self-contained zstd frame of `rawLength` bytes. */
function frame(body: Uint8Array, rawLength: number): EncodedBody {
  return {
    body: body as Uint8Array<ArrayBuffer>,
    headers: { "Content-Encoding": "zstd", [RAW_LENGTH_HEADER]: String(rawLength) },
  };
}

function identity(raw: Uint8Array): EncodedBody {
  return { body: raw as Uint8Array<ArrayBuffer>, headers: { "Content-Encoding": "identity" } };
}

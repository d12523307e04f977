/**
 * Streaming frame reader: whole, verified frames out of arbitrarily chunked
 * bytes, with memory bounded by one frame.
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { HEADER_SIZE, MAX_FRAME_LENGTH } from "./constants.ts";
import { checkPrefix, decodeFrame, PREFIX_SIZE } from "./decode.ts";
import { FrameError } from "./error.ts";
import { checkRefPrefix, decodeRefFrame, REF_MAGIC, type RefFrame } from "./ref-frame.ts";
import type { Frame } from "./types.ts";

/** Options of {@link FrameParser} and {@link FrameReader}. */
export interface FrameReaderOptions {
  /** Refuse frames longer than this (never above {@link MAX_FRAME_LENGTH}). */
  maxFrameLength?: number;
  /**
   * Default true: every frame owns a copy of its bytes, so a kept frame never
   * pins a large input chunk. False: a frame lying wholly inside one chunk is a
   * view into it (zero copy; the caller must not reuse the chunk).
   */
  copy?: boolean;
}

/**
 * The framing shared by {@link FrameParser} and {@link WireFrameParser}: every
 * record starts with a magic and a u32 length validated from its first 24
 * bytes, so at most one partial record (≤ maxFrameLength bytes) is buffered.
 */
class Framer<T> {
  /** Frames longer than this are refused. */
  readonly maxFrameLength: number;
  /** Whether frames own copies of their bytes (see {@link FrameReaderOptions.copy}). */
  readonly copy: boolean;
  #lengthOf: (prefix: Uint8Array, max: number) => number;
  #decode: (bytes: Uint8Array) => T;
  #prefix = new Uint8Array(PREFIX_SIZE);
  #prefixLength = 0;
  #frame: Uint8Array | null = null;
  #frameFilled = 0;
  #failed: FrameError | undefined;

  constructor(
    options: FrameReaderOptions,
    lengthOf: (prefix: Uint8Array, max: number) => number,
    decode: (bytes: Uint8Array) => T,
  ) {
    const max = options.maxFrameLength ?? MAX_FRAME_LENGTH;
    if (!Number.isInteger(max) || max <= HEADER_SIZE || max > MAX_FRAME_LENGTH) {
      throw new RangeError(`maxFrameLength must be in ${HEADER_SIZE + 1}..${MAX_FRAME_LENGTH}`);
    }
    this.maxFrameLength = max;
    this.copy = options.copy ?? true;
    this.#lengthOf = lengthOf;
    this.#decode = decode;
  }

  /** Bytes held for the frame in progress (never more than maxFrameLength). */
  get buffered(): number {
    return this.#frame ? this.#frameFilled : this.#prefixLength;
  }

  /**
   * Consumes a chunk; calls `emit` for each frame it completes, in order.
   * Frames completed before a defect are emitted before the FrameError is thrown.
   */
  push(chunk: Uint8Array, emit: (frame: T) => void): void {
    if (this.#failed) throw this.#failed;
    if (!(chunk instanceof Uint8Array)) {
      throw this.#fail(new FrameError("frame: input chunk is not a Uint8Array"));
    }
    try {
      this.#consume(chunk, emit);
    } catch (e) {
      if (e instanceof FrameError) throw this.#fail(e);
      throw e;
    }
  }

  /** Declares the end of input. @throws FrameError when it stopped inside a frame. */
  end(): void {
    if (this.#failed) throw this.#failed;
    if (this.#frame || this.#prefixLength > 0) {
      const want = this.#frame ? this.#frame.length : PREFIX_SIZE;
      throw this.#fail(
        new FrameError(`frame: input ended inside a frame (${this.buffered} of ${want} bytes)`),
      );
    }
  }

  #fail(e: FrameError): FrameError {
    this.#failed = e;
    this.#frame = null; // release the partial frame
    this.#frameFilled = 0;
    this.#prefixLength = 0;
    return e;
  }

  #consume(chunk: Uint8Array, emit: (frame: T) => void): void {
    let pos = 0;
    while (pos < chunk.length) {
      const left = chunk.length - pos;
      if (this.#frame) {
        const frame = this.#frame;
        const take = Math.min(frame.length - this.#frameFilled, left);
        frame.set(chunk.subarray(pos, pos + take), this.#frameFilled);
        this.#frameFilled += take;
        pos += take;
        if (this.#frameFilled === frame.length) {
          this.#frame = null;
          this.#frameFilled = 0;
          emit(this.#decode(frame));
        }
      } else if (this.#prefixLength === 0 && left >= PREFIX_SIZE) {
        // Fast path: the prefix is in this chunk.
        const length = this.#lengthOf(chunk.subarray(pos, pos + PREFIX_SIZE), this.maxFrameLength);
        if (left >= length) {
          const bytes = this.copy
            ? chunk.slice(pos, pos + length)
            : chunk.subarray(pos, pos + length);
          emit(this.#decode(bytes));
          pos += length;
        } else {
          this.#startFrame(length, chunk.subarray(pos));
          pos = chunk.length;
        }
      } else {
        const take = Math.min(PREFIX_SIZE - this.#prefixLength, left);
        this.#prefix.set(chunk.subarray(pos, pos + take), this.#prefixLength);
        this.#prefixLength += take;
        pos += take;
        if (this.#prefixLength === PREFIX_SIZE) {
          const length = this.#lengthOf(this.#prefix, this.maxFrameLength);
          this.#prefixLength = 0;
          this.#startFrame(length, this.#prefix);
        }
      }
    }
  }

  #startFrame(length: number, head: Uint8Array): void {
    assert(head.length < length, "a started frame is incomplete");
    this.#frame = new Uint8Array(length);
    this.#frame.set(head, 0);
    this.#frameFilled = head.length;
  }
}

/**
 * Push parser: feed chunks, get whole verified frames. It keeps at most one
 * partial frame (≤ maxFrameLength bytes), because a frame's length is validated
 * from its first 24 bytes before the rest is buffered. After a FrameError it
 * refuses all further input: a byte stream that lost framing cannot resync safely.
 *
 * @example
 * ```ts
 * import type { Frame } from "./types.ts";
 * declare const chunks: Uint8Array[];
 * declare function handle(frame: Frame): void;
 * const parser = new FrameParser();
 * for (const chunk of chunks) parser.push(chunk, (f) => handle(f));
 * parser.end(); // throws if the input stopped inside a frame
 * ```
 */
export class FrameParser extends Framer<Frame> {
  /** Creates a parser. @throws RangeError on a maxFrameLength outside 97..MAX_FRAME_LENGTH. */
  constructor(options: FrameReaderOptions = {}) {
    super(options, checkPrefix, decodeFrame);
  }
}

/** What the log stream carries: whole frames and reference frames (./ref-frame.ts). */
export type WireFrame = Frame | RefFrame;

/** True for a whole frame, false for a reference frame. */
export function isWholeFrame(f: WireFrame): f is Frame {
  return "payload" in f;
}

function isRef(prefix: Uint8Array): boolean {
  return new DataView(prefix.buffer, prefix.byteOffset, 4).getUint32(0, true) === REF_MAGIC;
}

/**
 * {@link FrameParser} for the log stream between the appliances: whole frames
 * (verified) and reference frames (header verified, pieces bounded).
 *
 * @example
 * ```ts
 * declare const chunk: Uint8Array;
 * const parser = new WireFrameParser();
 * parser.push(chunk, (f) => console.log(isWholeFrame(f) ? "whole" : "reference", f.header.lsn));
 * ```
 */
export class WireFrameParser extends Framer<WireFrame> {
  constructor(options: FrameReaderOptions = {}) {
    super(
      options,
      (prefix, max) => isRef(prefix) ? checkRefPrefix(prefix, max) : checkPrefix(prefix, max),
      (bytes): WireFrame => isRef(bytes) ? decodeRefFrame(bytes) : decodeFrame(bytes),
    );
  }
}

/**
 * Parses a buffer holding whole frames only.
 *
 * @throws FrameError on any defect, or when the buffer ends inside a frame.
 *
 * @example
 * ```ts
 * declare const body: Uint8Array;
 * for (const f of parseFrames(body)) console.log(f.header.lsn);
 * ```
 */
export function parseFrames(bytes: Uint8Array, options?: FrameReaderOptions): Frame[] {
  const parser = new FrameParser(options);
  const frames: Frame[] = [];
  parser.push(bytes, (f) => frames.push(f));
  parser.end();
  return frames;
}

/**
 * A TransformStream from bytes to whole verified frames. The readable side
 * errors with a FrameError on the first defect or when input ends mid-frame.
 *
 * @example
 * ```ts
 * declare const request: Request;
 * for await (const frame of request.body!.pipeThrough(new FrameReader())) {
 *   console.log(frame.header.lsn, frame.payload.length);
 * }
 * ```
 */
export class FrameReader extends TransformStream<Uint8Array, Frame> {
  /** Creates the stream; `options` bound the frame size and set the copy policy. */
  constructor(options?: FrameReaderOptions) {
    super(framerStream(new FrameParser(options)));
  }
}

/**
 * {@link FrameReader} for the log stream: whole and reference frames.
 *
 * @example
 * ```ts
 * declare const body: ReadableStream<Uint8Array>;
 * for await (const f of body.pipeThrough(new WireFrameReader())) console.log(f.header.lsn);
 * ```
 */
export class WireFrameReader extends TransformStream<Uint8Array, WireFrame> {
  constructor(options?: FrameReaderOptions) {
    super(framerStream(new WireFrameParser(options)));
  }
}

function framerStream<T>(parser: Framer<T>): Transformer<Uint8Array, T> {
  return {
    transform(chunk, controller) {
      parser.push(chunk, (f) => controller.enqueue(f));
    },
    flush() {
      parser.end();
    },
  };
}

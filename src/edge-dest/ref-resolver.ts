/**
 * Rebuilds the payload of a reference frame from what this destination holds
 * (records of its log, blocks live in its committed CP, or their first bytes)
 * and checks it against
 * the header's `payloadDigest`: the frame it yields is the one the source
 * logged, byte for byte, or there is none (the source is asked for the bytes).
 *
 * @module
 */
import { equalBytes } from "../bytes/mod.ts";
import { blake3 } from "../hash/blake3.ts";
import {
  decodeFrame,
  type Frame,
  FrameError,
  HEADER_SIZE,
  REF_CHECK_BYTES,
  type RefFrame,
} from "../protocol/log-frame/mod.ts";
import type { ObjectStore } from "../storage/objects/store.ts";

/**
 * The whole, verified frame `ref` stands for, or why it cannot be had here
 * (a piece not held, or bytes that are not the source's).
 *
 * @example
 * ```ts
 * import type { RefFrame } from "../protocol/log-frame/mod.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const ref: RefFrame;
 * const frame = resolveRefFrame(store, ref);
 * if (typeof frame === "string") console.log(`need LSN ${ref.header.lsn}: ${frame}`);
 * ```
 */
export function resolveRefFrame(store: ObjectStore, ref: RefFrame): Frame | string {
  const bytes = new Uint8Array(ref.header.frameLength);
  bytes.set(ref.head, 0);
  let at = HEADER_SIZE + ref.header.keyLength;
  for (const p of ref.pieces) {
    let piece: Uint8Array | null;
    if (p.kind === "bytes") piece = p.bytes;
    else if (p.kind === "log") {
      piece = store.log.readRecordPayload(p.lsn, p.payloadOffset, p.length);
      if (piece === null) {
        return `LSN ${p.lsn} [${p.payloadOffset}, +${p.length}) is not in this log`;
      }
    } else {
      const volume = store.volume;
      if (p.block === 0 || !volume.isLive(p.block)) return `block ${p.block} is not live here`;
      piece = volume.readBlock(p.block);
      // A PREFIX's check is of the whole block too: the block is the source's, so is its start.
      if (!equalBytes(blake3(piece).subarray(0, REF_CHECK_BYTES), p.check)) {
        return `block ${p.block} does not match its check`;
      }
      if (p.kind === "prefix") piece = piece.subarray(0, p.length);
    }
    bytes.set(piece, at);
    at += piece.length;
  }
  try {
    return decodeFrame(bytes);
  } catch (e) {
    if (e instanceof FrameError) return e.message;
    throw e;
  }
}

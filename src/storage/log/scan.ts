/**
 * Reading frames back from a segment with bounded buffers: one header+key
 * buffer and one payload buffer, reused for every frame.
 *
 * @module
 */
import {
  checkPrefix,
  decodeHeader,
  FrameError,
  type FrameHeader,
  HEADER_SIZE,
  MAX_KEY_LENGTH,
  MAX_PAYLOAD_LENGTH,
  PREFIX_SIZE,
  verifyPayload,
} from "../../protocol/log-frame/mod.ts";
import type { Segment } from "./segment.ts";

/** Reusable read buffers (about 1 MiB in all). */
export class ScanBuffers {
  readonly head = new Uint8Array(HEADER_SIZE + MAX_KEY_LENGTH);
  #payload: Uint8Array | undefined;

  /** The payload buffer, allocated on first use. */
  payload(length: number): Uint8Array {
    if (length > MAX_PAYLOAD_LENGTH) throw new Error("invariant: payload ≤ 1 MiB");
    this.#payload ??= new Uint8Array(MAX_PAYLOAD_LENGTH);
    return this.#payload.subarray(0, length);
  }
}

/**
 * Reads and verifies the header (and key) of the frame at `offset`, where the
 * segment's valid data ends at `end`.
 *
 * @throws FrameError when the bytes there are not a whole valid header or the
 *   frame runs past `end` (truncated).
 */
export function readHeaderAt(
  seg: Segment,
  offset: number,
  end: number,
  buffers: ScanBuffers,
): FrameHeader {
  const want = Math.min(buffers.head.length, end - offset);
  const got = seg.read(buffers.head, want, offset);
  const head = buffers.head.subarray(0, got);
  if (got < PREFIX_SIZE) {
    throw new FrameError(`frame: truncated: ${got} bytes left in the segment`);
  }
  const frameLength = checkPrefix(head);
  if (offset + frameLength > end) {
    throw new FrameError(
      `frame: truncated: frame of ${frameLength} bytes, ${end - offset} bytes left in the segment`,
    );
  }
  return decodeHeader(head);
}

/** Where a scan stopped short of the end of the file. */
export interface ScanDefect {
  offset: number;
  message: string;
  /**
   * True when the bytes are not a valid frame (what a torn write leaves); false
   * when a valid frame breaks the LSN sequence, which no crash can produce.
   */
  torn: boolean;
}

/** Result of {@link scanSegment}. */
export interface ScanResult {
  /** End of the last valid frame. */
  end: number;
  /** Frames appended to `seg.offsets`. */
  records: number;
  defect?: ScanDefect;
}

/**
 * Scans a whole segment file: verifies each frame (header checksum, payload
 * digest, LSN sequence) and fills `seg.offsets`; stops at the first defect.
 */
export function scanSegment(seg: Segment, fileSize: number, buffers: ScanBuffers): ScanResult {
  if (seg.offsets.length !== 0) throw new Error("invariant: a segment is scanned once, from 0");
  let offset = 0;
  while (offset < fileSize) {
    const expected = seg.firstLsn + seg.offsets.length;
    let header: FrameHeader;
    try {
      header = readHeaderAt(seg, offset, fileSize, buffers);
      const payload = buffers.payload(header.payloadLength);
      const got = seg.read(payload, payload.length, offset + HEADER_SIZE + header.keyLength);
      if (got !== payload.length) throw new Error("invariant: the frame lies within the file");
      verifyPayload(header, payload);
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      return {
        end: offset,
        records: seg.offsets.length,
        defect: { offset, message: e.message, torn: true },
      };
    }
    if (header.lsn !== expected) {
      return {
        end: offset,
        records: seg.offsets.length,
        defect: {
          offset,
          message: `frame at LSN ${header.lsn}: expected LSN ${expected}`,
          torn: false,
        },
      };
    }
    seg.offsets.push(offset);
    offset += header.frameLength;
  }
  return { end: offset, records: seg.offsets.length };
}

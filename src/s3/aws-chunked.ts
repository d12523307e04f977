/**
 * The `aws-chunked` content encoding S3 clients stream uploads in:
 * `hex-size[;chunk-signature=SIG]\r\n data \r\n` ... a zero-size final chunk,
 * then optional trailer lines (`x-amz-checksum-crc32:...`,
 * `x-amz-trailer-signature:...`) and an empty line. Decoded as it streams:
 * the chunk data passes on at once, and with signed chunks every chunk's
 * signature (chained from the request's seed signature) is checked when the
 * chunk ends. A failure errors the stream, so the store never commits the
 * object.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { S3Error } from "./errors.ts";
import { chunkSignature, type ChunkSigning, sameHex, trailerSignature } from "./sigv4.ts";

/** Longest chunk header or trailer line. */
const MAX_LINE = 4096;
/** Most trailer lines. */
const MAX_TRAILERS = 16;

/** A decoding `aws-chunked` body. */
export interface ChunkedDecoder {
  /** The decoded payload. */
  readable: ReadableStream<Uint8Array>;
  /** Trailer fields (lowercase names), complete once `readable` has ended. */
  trailers: Map<string, string>;
}

/**
 * Decodes the `aws-chunked` `body`; with `signing`, checks every chunk's
 * signature (and the trailer's, when `signedTrailer`).
 *
 * @example
 * ```ts
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * import type { Verified } from "./sigv4.ts";
 * declare const req: Request;
 * declare const verified: Verified;
 * declare const store: ObjectStore;
 * declare const key: string;
 * const { readable, trailers } = decodeAwsChunked(req.body!, verified.chunks);
 * await store.write(key, readable, { replace: true, offset: 0 });
 * console.log(trailers.get("x-amz-checksum-crc32"));
 * ```
 */
export function decodeAwsChunked(
  body: ReadableStream<Uint8Array>,
  signing: ChunkSigning | null,
  signedTrailer = false,
): ChunkedDecoder {
  const trailers = new Map<string, string>();
  const fail = (code: "IncompleteBody" | "InvalidRequest" | "SignatureDoesNotMatch", why: string) =>
    new S3Error(code, why);
  let state: "header" | "data" | "data-end" | "trailer" | "done" = "header";
  let line: number[] = [];
  let remaining = 0;
  let chunkSig = "";
  let previous = signing?.seed ?? "";
  let hash: Hash | null = null;
  let trailerText = "";
  let trailerSig: string | null = null;

  const endChunk = () => {
    if (!signing) return;
    const expected = chunkSignature(signing, previous, hash!.digest("hex"));
    if (!sameHex(expected, chunkSig)) {
      throw fail(
        "SignatureDoesNotMatch",
        "a chunk signature of the aws-chunked body does not match",
      );
    }
    previous = chunkSig;
  };
  const onHeader = (text: string) => {
    const [sizeText, ...ext] = text.split(";");
    if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText.trim())) {
      throw fail("InvalidRequest", `bad aws-chunked chunk header '${text.slice(0, 80)}'`);
    }
    remaining = parseInt(sizeText.trim(), 16);
    const sig = ext.map((e) => e.trim()).find((e) => e.startsWith("chunk-signature="));
    chunkSig = sig?.slice("chunk-signature=".length) ?? "";
    if (signing && chunkSig === "") {
      throw fail("SignatureDoesNotMatch", "a chunk of a signed aws-chunked body has no signature");
    }
    hash = signing ? createHash("sha256") : null;
    if (remaining === 0) {
      endChunk();
      state = "trailer";
    } else state = "data";
  };
  const onTrailer = (text: string) => {
    if (text === "") {
      if (signing && signedTrailer) {
        if (trailerSig === null) throw fail("SignatureDoesNotMatch", "the trailer is not signed");
        if (!sameHex(trailerSignature(signing, previous, trailerText), trailerSig)) {
          throw fail("SignatureDoesNotMatch", "the trailer signature does not match");
        }
      }
      state = "done";
      return;
    }
    const colon = text.indexOf(":");
    if (colon <= 0 || trailers.size >= MAX_TRAILERS) {
      throw fail("InvalidRequest", `bad aws-chunked trailer line '${text.slice(0, 80)}'`);
    }
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") trailerSig = value;
    else {
      trailers.set(name, value);
      trailerText += `${name}:${value}\n`;
    }
  };

  const transform = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      let i = 0;
      while (i < chunk.length) {
        if (state === "data") {
          const n = Math.min(remaining, chunk.length - i);
          const piece = chunk.subarray(i, i + n);
          hash?.update(piece);
          controller.enqueue(piece.slice());
          remaining -= n;
          i += n;
          if (remaining === 0) {
            endChunk();
            state = "data-end";
          }
          continue;
        }
        if (state === "done") {
          throw fail("InvalidRequest", "bytes after the final chunk of the aws-chunked body");
        }
        // A line: a chunk header, the CRLF after chunk data, or a trailer line.
        const b = chunk[i++];
        if (b !== 0x0a) {
          if (line.length >= MAX_LINE) {
            throw fail("InvalidRequest", "an aws-chunked line is too long");
          }
          line.push(b);
          continue;
        }
        if (line[line.length - 1] !== 0x0d) {
          throw fail("InvalidRequest", "aws-chunked lines end in CRLF");
        }
        const text = new TextDecoder().decode(new Uint8Array(line.slice(0, -1)));
        line = [];
        if (state === "data-end") {
          if (text !== "") throw fail("InvalidRequest", "chunk data is longer than its size");
          state = "header";
        } else if (state === "header") onHeader(text);
        else onTrailer(text);
      }
    },
    flush() {
      if (state !== "done") {
        throw fail("IncompleteBody", "the aws-chunked body ended before its final chunk");
      }
    },
  });
  return { readable: body.pipeThrough(transform), trailers };
}

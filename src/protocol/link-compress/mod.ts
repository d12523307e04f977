/**
 * Compression on the replication link (`docs/internals.md`, "The link's
 * compression"): zstd from `node:zlib`, one stream per link epoch for log
 * batches, one frame per CP sync part, raw for what does not compress.
 *
 * @example
 * ```ts
 * import { LinkDecoder, LinkEncoder } from "./mod.ts";
 * const enc = new LinkEncoder();
 * const dec = new LinkDecoder();
 * const { body, headers } = await enc.stream(new TextEncoder().encode("x".repeat(1000)));
 * const decoded = dec.decode(new Headers(headers), new Response(body).body, {
 *   maxBytes: 1 << 20,
 *   received: () => {},
 * });
 * console.log(await new Response(decoded).text() === "x".repeat(1000));
 * enc.close();
 * ```
 *
 * @module
 */
export { LINK_HEADER, RAW_LENGTH_HEADER, RECEIVE_MS_HEADER, SEQ_HEADER } from "./headers.ts";
export { type Level, LevelPolicy, LEVELS } from "./level.ts";
export { type EncodedBody, LEVEL, LinkEncoder } from "./encoder.ts";
export { type DecodeOptions, LinkDecoder } from "./decoder.ts";
export { PROBE_MIN_BYTES, RAW_RATIO } from "./probe.ts";
export { LONG_WINDOW_LOG, WINDOW_LOG } from "./zstd.ts";

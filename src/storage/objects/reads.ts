/**
 * Reads of the object store: stat, streamed reads that pin the CP they read,
 * listing (the catalog merged with the dirty layers), and the ETag cache of
 * committed objects whose ETag is unknown (after ranged writes).
 *
 * @example
 * ```ts
 * declare const reads: ObjectReads;
 * const info = reads.stat("a"); // { key, size, mtime, etag } or null
 * if (info) await new Response(reads.read("a", 0, info.size)).arrayBuffer(); // pins its CP meanwhile
 * ```
 *
 * @module
 */
import { assert } from "../../assert.ts";
import { compareBytes, hasPrefix } from "../../bytes/mod.ts";
import { RefsyncError } from "../../errors/mod.ts";
import type { Logger } from "../../logging/mod.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { Catalog } from "../catalog/mod.ts";
import type { DirtyLayers } from "./layers.ts";
import type { Reclamation } from "./reclamation.ts";
import { type ObjectInfo, RECORD_PAYLOAD_BYTES } from "./types.ts";
import { buildView, hashView, readChunk, type View, type ViewSource } from "./view.ts";

/** Computed ETags of committed objects kept in memory. */
const ETAG_CACHE_ENTRIES = 4096;

/** What the reads need from the store. */
export interface ReadsContext {
  layers: DirtyLayers;
  /** The committed catalog (a CP commit replaces it). */
  catalog: () => Catalog;
  io: ViewSource;
  reclamation: Reclamation;
  /** The committed CP: what a read started now pins. */
  cp: () => number;
  /** See {@link StoreOptions.readIdleMs}. */
  readIdleMs: number;
  logger: Logger;
  /** The read-idle timers' clock. */
  clock: Clock;
}

/** stat, read, list and the ETag cache. */
export class ObjectReads {
  readonly #ctx: ReadsContext;
  /**
   * ETags computed on read for committed objects stored with an unknown one
   * (after ranged writes); an entry is dropped when a CP commits that key.
   */
  readonly #etags = new Map<string, Uint8Array>();

  constructor(ctx: ReadsContext) {
    this.#ctx = ctx;
  }

  /** Size, ETag and mtime of `key`, or null when it does not exist. */
  stat(key: string): ObjectInfo | null {
    const view = this.#view(key);
    if (view === null) return null;
    return {
      key,
      size: view.size,
      mtime: view.mtime,
      etag: this.#etagOf(key, view),
      meta: view.meta,
    };
  }

  /** {@link stat} with the ETag computed only when read (a precondition may not need it). */
  current(key: string): ObjectInfo | null {
    const view = this.#view(key);
    if (view === null) return null;
    const etagOf = () => this.#etagOf(key, view);
    let etag: string | null = null;
    return {
      key,
      size: view.size,
      mtime: view.mtime,
      meta: view.meta,
      get etag() {
        return etag ??= etagOf();
      },
    };
  }

  /** A CP committed these keys: their ETags are in the catalog now (or unknown again). */
  forgetEtags(keys: Iterable<string>): void {
    for (const key of keys) this.#etags.delete(key);
  }

  /** The catalog changed as a whole (a CP adopted from the source). */
  clearEtags(): void {
    this.#etags.clear();
  }

  /** See {@link ObjectStore.read}. */
  read(key: string, start: number, end: number): ReadableStream<Uint8Array> {
    const { reclamation, readIdleMs: idleMs, logger, io, clock } = this.#ctx;
    const view = this.#view(key);
    if (view === null) throw new RefsyncError("not_found", `no object with key '${key}'`);
    if (start < 0 || end > view.size || start > end) {
      throw new RefsyncError("range_not_satisfiable", `range outside object of ${view.size} bytes`);
    }
    const pin = reclamation.pin(this.#ctx.cp(), key);
    let pos = start;
    // The first piece is read (its blocks checked) now: a damaged block throws before any header.
    let first: Uint8Array | null = null;
    try {
      if (start < end) first = readChunk(view, start, end, RECORD_PAYLOAD_BYTES, io);
    } catch (e) {
      reclamation.unpin(pin);
      throw e;
    }
    const awaitPull = () => {
      clock.clearTimeout(pin.timer);
      pin.timer = clock.setTimeout(() => {
        logger.warn("store.read_abandoned", {
          key,
          cp: pin.cp,
          idleMs,
          sentBytes: pos - start,
          bytes: end - start,
        });
        reclamation.unpin(pin);
      }, idleMs);
    };
    awaitPull();
    return new ReadableStream<Uint8Array>({
      pull: (controller) => {
        clock.clearTimeout(pin.timer);
        if (pin.released) {
          controller.error(
            new RefsyncError(
              "request_timeout",
              `the read of '${key}' was released (not continued for ${idleMs} ms, or the store closed)`,
            ),
          );
          return;
        }
        try {
          if (pos < end) {
            const out = first ?? readChunk(view, pos, end, RECORD_PAYLOAD_BYTES, io);
            first = null;
            pos += out.length;
            controller.enqueue(out);
          }
          // Ended with the last chunk: a consumer that stops at Content-Length pulls no more.
          if (pos >= end) {
            reclamation.unpin(pin);
            controller.close();
          } else {
            awaitPull();
          }
        } catch (e) {
          reclamation.unpin(pin);
          controller.error(e);
        }
      },
      cancel: () => reclamation.unpin(pin),
    }, { highWaterMark: 0 });
  }

  /** See {@link ObjectStore.list}. */
  list(opts: { prefix?: string; startAfter?: string; limit: number }): {
    objects: ObjectInfo[];
    next: string | null;
  } {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const prefix = opts.prefix ? enc.encode(opts.prefix) : undefined;
    let after: Uint8Array | undefined = opts.startAfter === undefined
      ? undefined
      : enc.encode(opts.startAfter);
    // Keys written since the last CP may not be in the catalog yet: merge them in.
    const dirty = [...this.#ctx.layers.keys()]
      .map((k) => enc.encode(k))
      .filter((b) => !prefix || hasPrefix(b, prefix))
      .sort(compareBytes);
    const objects: ObjectInfo[] = [];
    for (let round = 0; round < 1_000_000; round++) {
      const page = this.#ctx.catalog().list({ prefix, startAfter: after, limit: opts.limit + 1 });
      const bound = page.more ? page.entries[page.entries.length - 1].key : undefined;
      const candidates = page.entries.map((e) => e.key);
      for (const b of dirty) {
        if (after && compareBytes(b, after) <= 0) continue;
        if (bound && compareBytes(b, bound) > 0) break;
        candidates.push(b);
      }
      candidates.sort(compareBytes);
      let previous: Uint8Array | undefined;
      for (const b of candidates) {
        if (previous && compareBytes(previous, b) === 0) continue;
        previous = b;
        const key = dec.decode(b);
        const info = this.stat(key);
        if (!info) continue;
        if (objects.length === opts.limit) {
          return { objects, next: objects[objects.length - 1].key };
        }
        objects.push(info);
      }
      if (!bound) return { objects, next: null };
      after = bound;
    }
    assert(false, "listing terminates");
  }

  #view(key: string): View | null {
    const { layers } = this.#ctx;
    return buildView(key, [layers.active, layers.frozen], this.#ctx.catalog());
  }

  /** The hex ETag of `view`, hashing the bytes when it is unknown (after ranged writes). */
  #etagOf(key: string, view: View): string {
    if (view.etag === null) {
      const top = this.#ctx.layers.top(key);
      view.etag = top ? null : this.#etags.get(key) ?? null;
      view.etag ??= hashView(view, this.#ctx.io);
      if (top) top.etag ??= view.etag;
      else this.#remember(key, view.etag);
    }
    return view.etag.toHex();
  }

  #remember(key: string, etag: Uint8Array): void {
    if (this.#etags.size >= ETAG_CACHE_ENTRIES) {
      this.#etags.delete(this.#etags.keys().next().value!);
    }
    this.#etags.set(key, etag);
  }
}

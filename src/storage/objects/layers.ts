/**
 * The dirty layers: every write logged since the last committed CP, as
 * extents into the log. New writes go to the `active` layer; a CP freezes it
 * (the `frozen` layer is what the CP writes) and starts a new active one. A
 * CP that fails puts its frozen writes back under what came since.
 *
 * @example
 * ```ts
 * import { DirtyLayers } from "./layers.ts";
 *
 * const layers = new DirtyLayers(() => null);
 * const key = new TextEncoder().encode("a");
 * layers.applyDelete("a", key, 7, Date.now());
 * const frozen = layers.freeze(); // the CP writes `frozen`
 * layers.committed(); // ... and it is in the catalog now
 * console.log(frozen.size, layers.active.size); // 1 0
 * ```
 *
 * @module
 */
import { addExtent, type DirtyObject, type Extent, extentBytes } from "./overlay.ts";

/** The size of an object below the active layer (frozen layer, else catalog), null when absent. */
export type SizeBelow = (key: string) => { size: number } | null;

/** The active and frozen layers, with the byte counts space accounting and back pressure use. */
export class DirtyLayers {
  /** Writes since the last freeze. */
  active = new Map<string, DirtyObject>();
  /** The layer the running CP writes, or null. */
  frozen: Map<string, DirtyObject> | null = null;
  /** Dirty bytes of the active layer. */
  activeBytes = 0;
  /** Dirty bytes of the frozen layer while a CP writes it. */
  frozenBytes = 0;
  /** Payload bytes of transactions logged but not yet committed (not in any layer yet). */
  stagedBytes = 0;
  /** First LSNs of transactions that have records in the log but no COMMIT yet. */
  readonly inflight = new Set<number>();
  readonly #catalogSize: SizeBelow;

  /** `catalogSize` says an object's size in the committed catalog. */
  constructor(catalogSize: SizeBelow) {
    this.#catalogSize = catalogSize;
  }

  /** The newest layer's entry for `key` (active, else frozen). */
  top(key: string): DirtyObject | undefined {
    return this.active.get(key) ?? this.frozen?.get(key);
  }

  /** Every key with an entry in either layer. */
  keys(): Set<string> {
    return new Set([...this.active.keys(), ...(this.frozen?.keys() ?? [])]);
  }

  /** Objects with an entry in either layer (a key in both counts twice). */
  get objectCount(): number {
    return this.active.size + (this.frozen?.size ?? 0);
  }

  /** True while anything is dirty (a CP has something to write, or is writing it). */
  get dirty(): boolean {
    return this.active.size > 0 || this.frozen !== null;
  }

  /**
   * The LSN a CP frozen now covers: every record up to the last one, but not
   * the first record of a transaction still open (its COMMIT is not logged).
   */
  coveredLsn(lastLsn: number): number {
    return Math.min(lastLsn, Math.min(...this.inflight) - 1);
  }

  /** Applies a write of `extents` (all of a committed record or transaction) to the active layer. */
  applyWrite(
    key: string,
    keyBytes: Uint8Array,
    replace: boolean,
    end: number,
    extents: Extent[],
    etag: Uint8Array | null,
    meta: Uint8Array | null,
    mtime: number,
    lsn: number,
  ): void {
    let d = this.active.get(key);
    if (replace || !d) {
      const below = replace ? null : this.#sizeBelowActive(key);
      const old = d;
      d = {
        key,
        keyBytes,
        deleted: false,
        replace: replace || below === null,
        size: replace ? end : (below?.size ?? 0),
        mtime,
        etag: null,
        meta: null,
        extents: [],
        lastLsn: lsn,
      };
      if (old) this.activeBytes -= extentBytes(old.extents);
      this.active.set(key, d);
    }
    if (d.deleted) {
      d.deleted = false;
      d.size = 0;
    }
    for (const e of extents) {
      addExtent(d.extents, e);
      d.size = Math.max(d.size, e.end);
    }
    if (!replace) d.size = Math.max(d.size, end);
    this.activeBytes += extents.reduce((n, e) => n + e.end - e.start, 0);
    d.etag = etag;
    d.meta = meta;
    d.mtime = mtime;
    d.lastLsn = lsn;
  }

  /** Applies a delete to the active layer: it hides everything below. */
  applyDelete(key: string, keyBytes: Uint8Array, lsn: number, mtime: number): void {
    const old = this.active.get(key);
    if (old) this.activeBytes -= extentBytes(old.extents);
    this.active.set(key, {
      key,
      keyBytes,
      deleted: true,
      replace: true,
      size: 0,
      mtime,
      etag: null,
      meta: null,
      extents: [],
      lastLsn: lsn,
    });
  }

  /** Starts a CP: the active layer becomes the frozen one; returns it. */
  freeze(): Map<string, DirtyObject> {
    const frozen = this.active;
    this.frozen = frozen;
    this.frozenBytes = this.activeBytes;
    this.active = new Map();
    this.activeBytes = 0;
    return frozen;
  }

  /** The CP committed: the frozen layer is in the catalog now. */
  committed(): void {
    this.frozen = null;
    this.frozenBytes = 0;
  }

  /** The CP failed: its frozen writes go back under anything written since. */
  thaw(frozen: Map<string, DirtyObject>): void {
    for (const [k, d] of frozen) {
      const newer = this.active.get(k);
      if (!newer) {
        this.active.set(k, d);
        this.activeBytes += extentBytes(d.extents);
      } else if (!newer.replace) {
        for (const e of newer.extents) addExtent(d.extents, e);
        d.size = Math.max(d.size, newer.size);
        d.etag = newer.etag;
        d.meta = null;
        d.mtime = newer.mtime;
        d.lastLsn = newer.lastLsn;
        this.active.set(k, d);
        this.activeBytes += extentBytes(d.extents) - extentBytes(newer.extents);
      }
    }
    this.committed();
  }

  /** Forgets the active layer and open transactions (the log is replayed into it again). */
  clearActive(): void {
    this.active = new Map();
    this.activeBytes = 0;
    this.inflight.clear();
  }

  #sizeBelowActive(key: string): { size: number } | null {
    const d = this.frozen?.get(key);
    if (d) return d.deleted ? null : { size: d.size };
    return this.#catalogSize(key);
  }
}

/**
 * What the parts of the object store share and change: the committed
 * catalog (a CP commit swaps it), the pair generation, the role, fencing, and
 * the counters of `/v1/admin/stats`.
 *
 * @example
 * ```ts
 * import { Catalog } from "../catalog/mod.ts";
 * import { Volume } from "../volume/volume.ts";
 * const volume = await Volume.open(`${await Deno.makeTempDir()}/volume.dat`);
 * const state = newStoreState(new Catalog(volume, volume.superblock.catalogRoot), 1, false);
 * assertOpen(state); // throws `unavailable` once the store is closed
 * ```
 *
 * @module
 */
import { RefsyncError } from "../../errors/mod.ts";
import type { Logger } from "../../logging/mod.ts";
import type { Clock } from "../../runtime/clock.ts";
import type { Catalog } from "../catalog/mod.ts";
import type { NvLog } from "../log/mod.ts";
import type { Volume } from "../volume/volume.ts";
import type { DirtyLayers } from "./layers.ts";
import type { ObjectReads } from "./reads.ts";
import type { Reclamation } from "./reclamation.ts";

/** Counters of the store. */
export interface StoreStats {
  cp: { committed: number; lastDurationMs: number; durationsMs: number[] };
  lsn: { last: number; acked: number };
}

/** The store's mutable state, shared by its parts. */
export interface StoreState {
  /** The committed CP's catalog: what reads below the dirty layers see. */
  catalog: Catalog;
  /** Pair generation of the next CP (raised by a promotion). */
  generation: number;
  /** True while the store mirrors a source (a destination not promoted). */
  mirror: boolean;
  /** Why this store takes no more writes (its mirror was promoted over it), or null. */
  fenced: string | null;
  closed: boolean;
  readonly stats: StoreStats;
}

/** The parts of a store that its CP lifecycle and its role changes work on. */
export interface StoreParts {
  volume: Volume;
  log: NvLog;
  layers: DirtyLayers;
  state: StoreState;
  reclamation: Reclamation;
  reads: ObjectReads;
  logger: Logger;
  /** Durations (the simulator's own clock). */
  clock: Clock;
}

/** A fresh state over the committed `catalog`. */
export function newStoreState(catalog: Catalog, generation: number, mirror: boolean): StoreState {
  return {
    catalog,
    generation,
    mirror,
    fenced: null,
    closed: false,
    stats: {
      cp: { committed: 0, lastDurationMs: 0, durationsMs: [] },
      lsn: { last: 0, acked: 0 },
    },
  };
}

/** Refuses a call on a closed store. */
export function assertOpen(state: StoreState): void {
  if (state.closed) throw new RefsyncError("unavailable", "the store is closed");
}

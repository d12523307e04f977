/**
 * Reclamation of what committed CPs replaced, and the readers' pins that
 * hold it back. Invariant 2 lives here: the blocks a CP released, and the
 * log it covers, are freed only once the mirror committed that CP too
 * (`synced`) and no reader of an older CP remains. The log is dropped one CP
 * behind: a torn newest superblock falls back to the previous CP, whose
 * replay needs it.
 *
 * @example
 * ```ts
 * import { rootLogger } from "../../logging/mod.ts";
 * import { systemClock } from "../../runtime/clock.ts";
 * import type { NvLog } from "../log/mod.ts";
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * declare const log: NvLog;
 * const reclaim = new Reclamation(volume, log, rootLogger(), 5 * 60_000, systemClock);
 * const pin = reclaim.pin(volume.superblock.cp, "a"); // a reader starts on the committed CP
 * reclaim.retire({ cp: 8, blocks: [12, 13], lsn: 900, synced: true }); // CP 8 released them
 * reclaim.unpin(pin); // the reader ended: blocks 12 and 13 are free now
 * ```
 *
 * @module
 */
import type { Logger } from "../../logging/mod.ts";
import type { Clock, TimerId } from "../../runtime/clock.ts";
import type { NvLog } from "../log/mod.ts";
import type { Volume } from "../volume/volume.ts";

/** An open reader's hold on the CP it reads: that CP's blocks and log are kept meanwhile. */
export interface Pin {
  cp: number;
  key: string;
  since: number;
  warned: boolean;
  released: boolean;
  /** The idle bound of its stream. */
  timer?: TimerId;
}

/** What committed CP `cp` replaced: its released blocks, and the log up to `lsn` it covers. */
export interface Retired {
  cp: number;
  blocks: number[];
  lsn: number;
  /** The mirror committed CP `cp` too (always true without a mirror, once it is known). */
  synced: boolean;
}

/** Pins and the queue of what committed CPs replaced. */
export class Reclamation {
  readonly #volume: Volume;
  readonly #log: NvLog;
  readonly #logger: Logger;
  readonly #pinWarnMs: number;
  readonly #clock: Clock;
  readonly #pins = new Set<Pin>();
  /** Oldest first; freed in order. */
  readonly #retired: Retired[] = [];

  constructor(volume: Volume, log: NvLog, logger: Logger, pinWarnMs: number, clock: Clock) {
    this.#volume = volume;
    this.#log = log;
    this.#logger = logger;
    this.#pinWarnMs = pinWarnMs;
    this.#clock = clock;
  }

  /** CPs whose replaced blocks or log are not freed yet. */
  get pending(): number {
    return this.#retired.length;
  }

  /** A reader of CP `cp` starts: nothing that CP holds is freed until {@link unpin}. */
  pin(cp: number, key: string): Pin {
    const pin: Pin = { cp, key, since: this.#clock.monotonic(), warned: false, released: false };
    this.#pins.add(pin);
    return pin;
  }

  /** The reader ended (or was cut off): what only it held back is freed. */
  unpin(pin: Pin): void {
    this.#clock.clearTimeout(pin.timer);
    if (pin.released) return;
    pin.released = true;
    this.#pins.delete(pin);
    this.collect();
  }

  /** Queues what a committed CP replaced. */
  retire(retired: Retired): void {
    this.#retired.push(retired);
  }

  /** The mirror committed every CP committed here: all of it may go once no reader holds it. */
  markSynced(): void {
    for (const r of this.#retired) r.synced = true;
    this.collect();
  }

  /**
   * The mirror holds CP `cp` (a catch-up committed it): what CPs up to it
   * replaced may go once no reader holds it; later CPs wait for their sync.
   */
  markSyncedThrough(cp: number): void {
    for (const r of this.#retired) if (r.cp <= cp) r.synced = true;
    this.collect();
  }

  /** Frees what committed CPs replaced, once the mirror has them and no reader of an older CP remains. */
  collect(): void {
    while (this.#retired.length > 0) {
      const r = this.#retired[0];
      if (!r.synced) return;
      const holders = [...this.#pins].filter((p) => p.cp < r.cp);
      if (holders.length > 0) {
        this.#warnOldPins(holders);
        return;
      }
      this.#retired.shift();
      this.#volume.free(r.blocks);
      // A torn newest superblock falls back to the previous CP: keep the log its replay needs.
      const fallback = this.#volume.previousSuperblock?.lsnCovered ?? r.lsn;
      this.#log.dropThrough(Math.min(r.lsn, fallback));
    }
  }

  /** The store closes: every open reader errors if pulled again, and its timer stops. */
  releaseAll(): void {
    for (const p of this.#pins) {
      this.#clock.clearTimeout(p.timer);
      p.released = true;
    }
    this.#pins.clear();
  }

  /** Logs, once each, the readers that have held back reclamation past the bound. */
  #warnOldPins(holders: Pin[]): void {
    const now = this.#clock.monotonic();
    for (const p of holders) {
      if (p.warned || now - p.since < this.#pinWarnMs) continue;
      p.warned = true;
      this.#logger.warn("store.pin_held", {
        key: p.key,
        cp: p.cp,
        ageMs: Math.round(now - p.since),
        garbageCps: this.#retired.length,
      });
    }
  }
}

/**
 * Space accounting of client writes (a full disk answers `no_space`, 507,
 * before anything of the write is logged). A logged byte is stored twice
 * until the CP that covers it is committed on both sides: in the log now, in
 * the volume at that CP (the log segment goes after it). The volume's unused
 * blocks take CP writes before the file grows, but never log records. The
 * backlog is what is logged and not yet in a CP; the reserve is what CP
 * metadata, DELETE and COMMIT records use.
 *
 * @example
 * ```ts
 * declare const space: SpaceAccounting;
 * const data = new Uint8Array(1 << 20);
 * await space.makeRoom(data.length, "a"); // waits for CPs that can free room
 * space.claim(data.length, "a"); // throws no_space when the record does not fit
 * ```
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { RefsyncError } from "../../errors/mod.ts";
import type { FileOps } from "../fs/file-ops.ts";
import type { NvLog } from "../log/mod.ts";
import type { Volume } from "../volume/volume.ts";
import type { DirtyLayers } from "./layers.ts";

/** What the accounting reads and may start. */
export interface SpaceContext {
  ops: FileOps;
  /** The data directory: its filesystem is measured. */
  dir: string;
  layers: DirtyLayers;
  volume: Volume;
  log: NvLog;
  /** Free bytes client writes may not take ({@link StoreOptions.spaceReserve}). */
  reserve: number;
  /** CPs whose replaced blocks are not freed yet ({@link Reclamation.pending}). */
  pendingReclaim: () => number;
  /** Takes a CP (an empty one with `force`). */
  checkpoint: (force: boolean) => Promise<unknown>;
}

/** Decides whether a client record fits, and waits for CPs that make room. */
export class SpaceAccounting {
  readonly #ctx: SpaceContext;

  constructor(ctx: SpaceContext) {
    this.#ctx = ctx;
  }

  /** Free bytes client writes may not take. */
  get reserve(): number {
    return this.#ctx.reserve;
  }

  /**
   * The bytes the filesystem would have left beyond the reserve once a record
   * of `bytes` (to `key`) is logged and the CPs have written everything logged
   * into the volume; negative when it does not fit. Infinity when the free
   * space is unknown (no statfs).
   */
  left(bytes: number, key: string): number {
    const { ops, dir, layers, volume } = this.#ctx;
    const available = ops.availableBytes(dir);
    if (!Number.isFinite(available)) return Infinity;
    const data = layers.activeBytes + layers.frozenBytes + layers.stagedBytes + bytes;
    const objects = layers.objectCount + 1;
    // Per object a partial block and a share of catalog and map blocks; maps cost 1/511 of data.
    const backlog = data + Math.ceil(data / 256) + objects * 2 * BLOCK_SIZE;
    const growth = Math.max(0, backlog - volume.unusedBytes);
    const record = bytes + BLOCK_SIZE + key.length; // frame header, key, rounding
    return available - record - growth - this.reserve;
  }

  /**
   * While a record of `bytes` does not fit but a CP could make room, waits
   * for one (at most three). A CP moves logged bytes into the volume and frees
   * what older CPs released; the log is dropped one CP behind (a torn newest
   * superblock falls back to the previous CP, whose replay needs it), so when
   * the log still holds records the committed CP covers, an empty CP is taken
   * to let them go.
   */
  async makeRoom(bytes: number, key: string): Promise<void> {
    const { layers, log, volume } = this.#ctx;
    for (let i = 0; i < 3 && this.left(bytes, key) < 0; i++) {
      const dirty = layers.dirty;
      const droppable = log.firstLsn <= volume.superblock.lsnCovered;
      if (!dirty && !droppable && this.#ctx.pendingReclaim() === 0) return;
      await this.#ctx.checkpoint(!dirty).catch(() => {/* claim() says what is left */});
    }
  }

  /** Refuses (`no_space`) a client record of `bytes` that would leave the CPs unable to write the log. */
  claim(bytes: number, key: string): void {
    const left = this.left(bytes, key);
    if (left >= 0) return;
    throw new RefsyncError(
      "no_space",
      `no space for this write: about ${-left} bytes more are needed (a write is logged now ` +
        `and written into the volume at the next CP) beyond the ${this.reserve}-byte reserve ` +
        `kept for CPs and deletes. Delete objects: the CP that follows frees their space.`,
      { missingBytes: -left, reserveBytes: this.reserve },
    );
  }
}

/**
 * A destination's catch-up, durable: `DATA/catch-up.json` says that the
 * volume is being brought from its committed CP (`baseCp`, 0 = empty) to an
 * image of the source's CP `targetCp`, and how far that got. It is written
 * (atomically, directory fsynced) before the first block, so from the first
 * block on the image is known to be incomplete; its progress (`blocksDone`:
 * walk entries written and fdatasynced) is kept every few MiB; it is deleted
 * only after the commit. While it exists the store serves no object (the HTTP
 * layer answers 503) and refuses promotion.
 *
 * The commit checks every block born after the base against its pointer (data
 * and map blocks by their check, catalog nodes by checksum and birth), walks
 * the new tree for the allocation bitmap, and writes the source's superblock
 * to the slot not holding the base.
 *
 * @example
 * ```ts
 * import type { FileSystem } from "../fs/file-ops.ts";
import type { CatchUpBegin } from "../../protocol/handshake/mod.ts";
 * declare const fs: FileSystem;
 * const recorded = loadCatchUp(fs, "data/destination"); // null when none runs
 * ```
 *
 * @module
 */
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { CatalogNodeError } from "../catalog/mod.ts";
import { fsyncDir, writeFileAtomic } from "../durable.ts";
import type { FileSystem } from "../fs/file-ops.ts";
import type { CatchUpBegin } from "../../protocol/handshake/mod.ts";
import { endOfSlice } from "../time-slice.ts";
import { Bitmap } from "../volume/bitmap.ts";
import { blockCheck, CorruptBlockError } from "../volume/check.ts";
import { decodeSuperblock, type Superblock } from "../volume/superblock.ts";
import type { CpTransaction } from "../volume/volume.ts";
import { walkBornAfter } from "./catch-up-walk.ts";
import { walkTree } from "./recovery.ts";
import { adoptCommitted, type RoleContext } from "./roles.ts";

/** The file, in the data directory. */
export const CATCH_UP_FILE = "catch-up.json";

/**
 * What `DATA/catch-up.json` holds: the catch-up as its source began it, and
 * how far it got (walk entries written and fdatasynced, and their bytes).
 */
export interface CatchUpRecord extends CatchUpBegin {
  blocksDone: number;
  bytesDone: number;
}

/** The outcome of a catch-up's commit. */
export type CatchUpCommit =
  | { committed: true; superblock: Superblock }
  | { committed: false; need: number[]; reason: string };

/** The recorded catch-up in `dir`, or null. */
export function loadCatchUp(fs: FileSystem, dir: string): CatchUpRecord | null {
  const path = `${dir}/${CATCH_UP_FILE}`;
  if (!fs.existsSync(path)) return null;
  const text = new TextDecoder().decode(fs.readFileSync(path));
  try {
    return JSON.parse(text) as CatchUpRecord;
  } catch (e) {
    // Written atomically: a damaged file is not ours to guess about.
    throw new Error(`${path} is damaged (${errorMessage(e)}); it records an unfinished catch-up`);
  }
}

/** Records `record` durably (atomic write, directory fsync). */
export function saveCatchUp(fs: FileSystem, dir: string, record: CatchUpRecord): void {
  const bytes = new TextEncoder().encode(JSON.stringify(record) + "\n");
  writeFileAtomic(`${dir}/${CATCH_UP_FILE}`, bytes, 0o644, fs);
}

/** Deletes the record durably: the catch-up is committed. */
export function clearCatchUp(fs: FileSystem, dir: string): void {
  const path = `${dir}/${CATCH_UP_FILE}`;
  if (!fs.existsSync(path)) return;
  fs.unlinkSync(path);
  fsyncDir(dir, fs);
}

/**
 * Why a destination in a catch-up is not promoted (`conflict`): its image is
 * incomplete.
 *
 * @example
 * ```ts
 * declare const record: CatchUpRecord;
 * throw promotionRefused(record);
 * ```
 */
export function promotionRefused(c: CatchUpRecord): RefsyncError {
  return new RefsyncError(
    "conflict",
    `this destination holds no complete image: ${describeCatchUp(c)}; ` +
      "promote a destination only once mirror.state is in-sync",
    { catchUp: { baseCp: c.baseCp, targetCp: c.targetCp, bytesDone: c.bytesDone } },
  );
}

/**
 * Why a destination in a catch-up serves no object (`unavailable`, 503): its
 * image is incomplete.
 *
 * @example
 * ```ts
 * declare const record: CatchUpRecord;
 * throw readsRefused(record);
 * ```
 */
export function readsRefused(c: CatchUpRecord): RefsyncError {
  const what = c.baseCp === 0 ? "initializing (a baseline)" : "resyncing";
  return new RefsyncError(
    "unavailable",
    `this destination is ${what}: its image is incomplete; ${describeCatchUp(c)}`,
  );
}

/**
 * "a baseline to CP 9 is 31% done (N of M bytes)".
 *
 * @example
 * ```ts
 * declare const record: CatchUpRecord;
 * console.log(describeCatchUp(record));
 * ```
 */
export function describeCatchUp(c: CatchUpRecord): string {
  const pct = Math.floor(100 * Math.min(1, c.bytesDone / Math.max(1, c.totalBytes)));
  const kind = c.baseCp === 0 ? "a baseline" : `a resync from CP ${c.baseCp}`;
  return `${kind} to CP ${c.targetCp} is ${pct}% done (${c.bytesDone} of ${c.totalBytes} bytes)`;
}

/** True when the committed superblock is the record's target: its commit happened. */
export function catchUpCommitted(record: CatchUpRecord, sb: Superblock): boolean {
  return sb.cp === record.targetCp && sb.volumeDigest.toHex() === record.targetDigest;
}

/**
 * Commits the catch-up written through `tx` with the source's superblock
 * `bytes`: every block born after the base is checked on disk first (the ones
 * that fail are returned as `need`, nothing committed).
 */
export async function commitCatchUp(
  ctx: RoleContext,
  fs: FileSystem,
  record: CatchUpRecord,
  tx: CpTransaction,
  bytes: Uint8Array,
): Promise<CatchUpCommit> {
  const { volume } = ctx;
  const sb = decodeSuperblock(bytes);
  if (sb === null || sb.cp !== record.targetCp || sb.volumeDigest.toHex() !== record.targetDigest) {
    throw new RefsyncError(
      "bad_request",
      `catch-up COMMIT: the superblock is not that of the recorded target CP ${record.targetCp}`,
    );
  }
  tx.flush();
  await volume.sync();
  const need = await damagedBornAfter(ctx, sb, record.baseCp);
  if (need.length > 0) {
    return { committed: false, need, reason: `${need.length} blocks do not match their checks` };
  }
  const live = new Bitmap();
  walkTree(volume, sb.catalogRoot, (block) => live.set(block));
  await tx.commitCatchUp(bytes, live, record.baseCp);
  clearCatchUp(fs, ctx.dataDir.path);
  adoptCommitted(ctx, sb.cp, [], sb.lsnCovered);
  return { committed: true, superblock: sb };
}

/** Blocks of the tree of `sb` born after `base` that do not match what points at them. */
async function damagedBornAfter(ctx: RoleContext, sb: Superblock, base: number): Promise<number[]> {
  const { volume } = ctx;
  let walk;
  try {
    walk = walkBornAfter(volume, sb.catalogRoot, base);
  } catch (e) {
    // A node or map block that fails its check: the walk cannot go below it; ask for it.
    if (e instanceof CorruptBlockError || e instanceof CatalogNodeError) return [e.block];
    throw e;
  }
  const need: number[] = [];
  for (let i = 0; i < walk.length; i++) {
    // Catalog nodes and map blocks were checked by the walk itself.
    if (walk.kind(i) !== "data") continue;
    if (blockCheck(volume.readBlock(walk.block(i))) !== walk.check(i)) need.push(walk.block(i));
    if ((i & 255) === 255) await endOfSlice(ctx.clock);
  }
  return need;
}

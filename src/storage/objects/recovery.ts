/**
 * Recovery of the object store: which blocks are live at open (the
 * committed CP's, and the previous CP's until the mirror is known to hold the
 * committed one), the replay of the log above the committed CP into the
 * dirty layers, and the rebuild of the committed CP's sync input after a
 * restart. Replay is idempotent: every operation is a blind write (a range of
 * bytes, a whole replacement, a delete), so applying again what the CP
 * already holds yields the same state.
 *
 * @example
 * ```ts
 * import { NvLog } from "../log/mod.ts";
 * import { Volume } from "../volume/volume.ts";
 * import { DirtyLayers } from "./layers.ts";
 * const dir = await Deno.makeTempDir();
 * const volume = await Volume.open(`${dir}/volume.dat`);
 * const log = await NvLog.open(dir);
 * const layers = new DirtyLayers(() => null);
 * const retired = markLive(volume, false); // the previous CP's blocks, kept until synced
 * replay(log, volume.superblock.lsnCovered + 1, layers);
 * ```
 *
 * @module
 */
import { blake3 } from "../../hash/blake3.ts";
import { groupTransactions, type NvLog } from "../log/mod.ts";
import { walkLive } from "../walk.ts";
import { encodeSuperblock, type Superblock } from "../volume/superblock.ts";
import type { Volume } from "../volume/volume.ts";
import { WrittenBlocks } from "../volume/written.ts";
import { encodeKey } from "./key.ts";
import type { DirtyLayers } from "./layers.ts";
import type { Extent } from "./overlay.ts";
import type { Retired } from "./reclamation.ts";
import type { CheckpointResult } from "./types.ts";

/**
 * Visits every block of the tree under `root`: catalog nodes (`check` null:
 * a node carries its own checksum), map blocks, data blocks (with the check
 * of their pointer); a catalog leaf before the maps of its entries, a map
 * block before what it points at. With `sinceCp`, only blocks born after it
 * (the walk by birth CP: older subtrees are skipped unread).
 */
export function walkTree(
  volume: Volume,
  root: Superblock["catalogRoot"],
  visit: (block: number, birth: number, meta: boolean, check: bigint | null) => void,
  sinceCp = 0,
): void {
  walkLive(
    volume,
    root,
    (b) => visit(b.block, b.birth, b.kind !== "data", b.kind === "node" ? null : b.check),
    { sinceCp },
  );
}

/**
 * Marks the committed CP's blocks live in the volume's allocator. A source
 * also keeps the previous CP's blocks reserved until the mirror is known to
 * hold the committed CP (a restart may have come between the two commits):
 * they are returned as retired by the committed CP, not yet synced. A
 * destination allocates nothing itself (its source decides which blocks are
 * free), so it keeps nothing more; it also opens over a damaged map block or
 * catalog node (`onDamaged` hears of it), so that a verify can repair it:
 * the blocks below it, unmarked here, are live on its source, which never
 * hands them out. A source refuses to open then: it would reuse them.
 */
export function markLive(
  volume: Volume,
  mirror: boolean,
  onDamaged?: (block: number, kind: "node" | "map", key: Uint8Array | null) => void,
): Retired | null {
  const sb = volume.superblock;
  const live = new Set<number>();
  walkLive(volume, sb.catalogRoot, (b) => {
    live.add(b.block);
    volume.markLive(b.block);
  }, mirror ? { onDamaged } : {});
  const prev = volume.previousSuperblock;
  if (prev === null || mirror) return null;
  const blocks: number[] = [];
  try {
    walkTree(volume, prev.catalogRoot, (block) => {
      if (live.has(block)) return;
      if (block < 2 || block >= prev.blockCount) {
        throw new Error(`block ${block} not in CP ${prev.cp}`);
      }
      live.add(block);
      blocks.push(block);
    });
  } catch {
    // The previous CP's blocks are freed only once the committed CP is on both sides; a CP
    // that never committed may then have reused them (a crash mid-CP): nothing to keep.
    return null;
  }
  for (const b of blocks) volume.markLive(b);
  return { cp: sb.cp, blocks, lsn: sb.lsnCovered, synced: false };
}

/**
 * Applies every committed operation of the log from LSN `from` on to the
 * active layer. Transactions left open by a crash are never committed: they
 * stay out of view.
 */
export function replay(log: NvLog, from: number, layers: DirtyLayers): void {
  for (const op of groupTransactions([...log.records(from)])) {
    const key = op.key;
    const keyBytes = encodeKey(key);
    if (op.kind === "delete") {
      layers.applyDelete(key, keyBytes, op.commitLsn, op.mtime);
      continue;
    }
    const extents = op.writes.map((w): Extent => ({
      start: w.offset,
      end: w.offset + w.length,
      lsn: w.lsn,
      position: w.position,
      payloadStart: 0,
      blockDigests: null,
    }));
    const end = op.replace ? op.size! : Math.max(0, ...extents.map((e) => e.end));
    layers.applyWrite(
      key,
      keyBytes,
      op.replace,
      end,
      extents,
      op.etag ?? null,
      op.meta ?? null,
      op.mtime,
      op.commitLsn,
    );
  }
}

/**
 * Rebuilds the CP sync input of the committed CP from the volume: every
 * block born in it (a tree walk by birth CP), as DATA, and what it released
 * (live in the previous CP, not in this one). Used when the source restarted
 * between its own commit and the mirror's.
 */
export function rebuildLastCheckpoint(volume: Volume): CheckpointResult {
  const sb = volume.superblock;
  const prev = volume.previousSuperblock;
  if (prev === null) {
    throw new Error(
      `CP ${sb.cp - 1} is no longer on the volume; the destination needs a full resync`,
    );
  }
  const written = new WrittenBlocks();
  const current = new Set<number>();
  walkTree(volume, sb.catalogRoot, (block, birth, meta) => {
    current.add(block);
    if (birth === sb.cp) {
      const row = written.add(block, meta ? "meta" : "data", 0);
      written.setDigest(row, blake3(volume.readBlock(block)));
    }
  });
  const released = new Set<number>();
  walkTree(volume, prev.catalogRoot, (block) => {
    if (!current.has(block)) released.add(block);
  });
  return {
    superblock: sb,
    superblockBytes: encodeSuperblock(sb),
    written,
    released: [...released],
    zeroBlocks: 0,
    previousDigest: prev.volumeDigest,
    durationMs: 0,
  };
}

/**
 * The one walk of a committed CP's tree: every catalog node, every map block
 * and every data block live in it, each with what its pointer says about it
 * (birth CP, check) and the object it belongs to. Recovery marks live blocks
 * with it, `refsync verify` and the online verify list blocks with it.
 *
 * @module
 */
import { walkMap } from "./blockmap/blockmap.ts";
import { Catalog } from "./catalog/mod.ts";
import { decodeRecord, type ObjectRecord } from "./objects/record.ts";
import type { Superblock } from "./volume/superblock.ts";
import type { BlockReader } from "./volume/types.ts";

/** What a live block holds. */
export type LiveKind = "node" | "map" | "data";

/** One live block as its pointer describes it. */
export interface LiveBlock {
  block: number;
  birth: number;
  kind: LiveKind;
  /** The check in its map entry (`volume/check.ts`); 0n for a catalog node (it checks itself). */
  check: bigint;
  /** The object's key (UTF-8 bytes) for map and data blocks; null for a catalog node. */
  key: Uint8Array | null;
}

/** What a walk reports besides the blocks. */
export interface WalkHooks {
  /** Only blocks born after this CP: a subtree born at or before it is skipped unread. */
  sinceCp?: number;
  /**
   * A node or map block that could not be read (damaged): its subtree is
   * skipped and the walk goes on. Without this hook the walk throws instead.
   */
  onDamaged?: (block: number, kind: "node" | "map", key: Uint8Array | null, error: Error) => void;
  /** Each object, after its map was walked (`intact`: no map block of it was damaged). */
  onObject?: (key: Uint8Array, record: ObjectRecord, intact: boolean) => void;
}

/**
 * Visits every block live in the tree under `root`, catalog nodes in
 * pre-order and each object's map in key order (not block order).
 *
 * @example
 * ```ts
 * import type { Volume } from "./volume/volume.ts";
 * declare const volume: Volume;
 * const live: number[] = [];
 * walkLive(volume, volume.superblock.catalogRoot, (b) => live.push(b.block));
 * ```
 */
export function walkLive(
  reader: BlockReader,
  root: Superblock["catalogRoot"],
  visit: (b: LiveBlock) => void,
  hooks: WalkHooks = {},
): void {
  const { onDamaged, onObject, sinceCp = 0 } = hooks;
  new Catalog(reader, root).walk(
    (node) => visit({ block: node.block, birth: node.birth, kind: "node", check: 0n, key: null }),
    (key, value) => {
      const record = decodeRecord(value);
      let intact = true;
      walkMap(
        reader,
        record.map,
        (p, isMap) =>
          visit({
            block: p.block,
            birth: p.birth,
            kind: isMap ? "map" : "data",
            check: p.check,
            key,
          }),
        {
          sinceCp,
          onDamaged: onDamaged && ((p, error) => {
            intact = false;
            onDamaged(p.block, "map", key, error);
          }),
        },
      );
      onObject?.(key, record, intact);
    },
    {
      sinceCp,
      onDamaged: onDamaged && ((ptr, error) => onDamaged(ptr.block, "node", null, error)),
    },
  );
}

/**
 * The walk by birth CP of a catch-up: every block live in a committed tree
 * that was written after CP `base`, in one deterministic order (that of
 * `walkTree`, `recovery.ts`): the catalog in pre-order, after each leaf the
 * block map of each of its entries in key order, each map block before the
 * blocks it points to. So metadata always comes before the data it points at.
 * Copy-on-write rewrites every node on the path to a changed block, so a
 * subtree born at or before `base` holds nothing newer and is skipped unread:
 * the walk's cost follows what changed since `base`, not the volume.
 *
 * @example
 * ```ts
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * const walk = walkBornAfter(volume, volume.superblock.catalogRoot, 3);
 * for (let i = 0; i < walk.length; i++) console.log(walk.kind(i), walk.block(i));
 * ```
 *
 * @module
 */
import type { Superblock } from "../volume/superblock.ts";
import type { Volume } from "../volume/volume.ts";
import { walkTree } from "./recovery.ts";

/** What a walked block is. */
export type WalkKind = "catalog" | "map" | "data";

const KINDS: WalkKind[] = ["catalog", "map", "data"];

/**
 * The walk's entries, in typed columns (13 bytes a block, no object each):
 * block number, birth CP, kind, and the check of its pointer (map and data
 * blocks; a catalog node carries its own checksum and birth instead: 0n).
 */
export class BirthWalk {
  #blocks = new Uint32Array(1024);
  #births = new Uint32Array(1024);
  #kinds = new Uint8Array(1024);
  #checks = new BigUint64Array(1024);
  #length = 0;

  /** Entries in the walk. */
  get length(): number {
    return this.#length;
  }

  block(i: number): number {
    return this.#blocks[i];
  }

  birth(i: number): number {
    return this.#births[i];
  }

  kind(i: number): WalkKind {
    return KINDS[this.#kinds[i]];
  }

  /** The check in the block's pointer (0n for a catalog node). */
  check(i: number): bigint {
    return this.#checks[i];
  }

  /** @internal */
  add(block: number, birth: number, kind: WalkKind, check: bigint): void {
    if (this.#length === this.#blocks.length) this.#grow();
    const i = this.#length++;
    this.#blocks[i] = block;
    this.#births[i] = birth;
    this.#kinds[i] = KINDS.indexOf(kind);
    this.#checks[i] = check;
  }

  #grow(): void {
    const n = this.#blocks.length * 2;
    const grown = <T extends Uint32Array | Uint8Array | BigUint64Array>(
      a: T,
      make: (n: number) => T,
    ) => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.#blocks = grown(this.#blocks, (k) => new Uint32Array(k));
    this.#births = grown(this.#births, (k) => new Uint32Array(k));
    this.#kinds = grown(this.#kinds, (k) => new Uint8Array(k));
    this.#checks = grown(this.#checks, (k) => new BigUint64Array(k));
  }
}

/**
 * Every block of the tree under `root` born after CP `base` (0: every live
 * block), in walk order. Reads catalog nodes and map blocks (each checked
 * against its pointer), never a data block.
 */
export function walkBornAfter(
  volume: Volume,
  root: Superblock["catalogRoot"],
  base: number,
): BirthWalk {
  const walk = new BirthWalk();
  walkTree(volume, root, (block, birth, meta, check) => {
    walk.add(block, birth, check === null ? "catalog" : meta ? "map" : "data", check ?? 0n);
  }, base);
  return walk;
}

/**
 * Builds and sends a catch-up stream (a baseline or a resync): CATCH_UP, then
 * for every entry of the walk by birth CP of the target CP (from the
 * destination's `resumeFrom` on) one record — a CHECK for a block an earlier
 * catch-up may have left there, a verified reference for a data block the
 * destination holds elsewhere (the same choice as a CP sync's,
 * {@link referenceFor}), else DATA — and COMMIT with the target's
 * superblock. Every block is read from this volume and checked against its
 * pointer before it goes: a damaged block stops the catch-up, never sent.
 * Generated lazily while it is sent, in parts like a CP sync's.
 *
 * @module
 */
import { blake3 } from "../../hash/blake3.ts";
import { CatalogNodeError } from "../../storage/catalog/mod.ts";
import { decodeNode } from "../../storage/catalog/node.ts";
import { blockCheck, type CpRecord } from "../../protocol/cp-sync/records.ts";
import type { BirthWalk } from "../../storage/objects/catch-up-walk.ts";
import { checkOf, CorruptBlockError } from "../../storage/volume/check.ts";
import type { Superblock } from "../../storage/volume/superblock.ts";
import type { Volume } from "../../storage/volume/volume.ts";
import { type CpSyncSource, recordParts, referenceFor } from "./cp-sync-sender.ts";

/** What a catch-up stream is made of. */
export interface CatchUpSource extends Pick<CpSyncSource, "mode" | "forceData" | "locate"> {
  volume: Volume;
  /** The source's CP the destination becomes, and its encoded superblock. */
  target: Superblock;
  targetBytes: Uint8Array;
  /** The destination's committed CP (0: empty) and its volume digest. */
  baseCp: number;
  baseDigest: Uint8Array;
  /** The target's blocks born after `baseCp`, in walk order. */
  walk: BirthWalk;
  /** Walk entries the destination holds durably already (it said so). */
  resumeFrom: number;
  /**
   * Blocks born at or before this CP may be on the destination from an earlier
   * catch-up to it: they go as CHECK (0: none).
   */
  checkThrough: number;
}

/**
 * The records of the catch-up, in walk order.
 *
 * @example
 * ```ts
 * import type { CpRecord } from "../../protocol/cp-sync/records.ts";
 * declare const src: CatchUpSource;
 * declare function send(record: CpRecord): void;
 * for (const record of catchUpRecords(src)) send(record);
 * ```
 */
export function* catchUpRecords(src: CatchUpSource): Generator<CpRecord> {
  const t = src.target;
  yield {
    kind: "catchUp",
    cp: t.cp,
    baseCp: src.baseCp,
    pairGeneration: t.pairGeneration,
    volumeId: t.volumeId,
    baseDigest: src.baseDigest,
    targetDigest: t.volumeDigest,
    lsnCovered: t.lsnCovered,
    resumeFrom: src.resumeFrom,
  };
  const walk = src.walk;
  for (let i = src.resumeFrom; i < walk.length; i++) {
    const block = walk.block(i);
    const bytes = src.volume.readBlock(block);
    const digest = blake3(bytes);
    assertIntact(walk, i, bytes, digest);
    if (src.checkThrough > 0 && walk.birth(i) <= src.checkThrough && !src.forceData.has(block)) {
      yield { kind: "check", block, check: blockCheck(digest) };
      continue;
    }
    const ref = walk.kind(i) === "data" ? referenceFor(src, digest, block) : null;
    yield ref ?? { kind: "data", block, bytes };
  }
  yield { kind: "commit", superblock: src.targetBytes };
}

/** A block that does not match what points at it is never sent. */
function assertIntact(walk: BirthWalk, i: number, bytes: Uint8Array, digest: Uint8Array): void {
  const block = walk.block(i);
  const kind = walk.kind(i);
  if (kind === "catalog") {
    // A node carries its own checksum and birth; decodeNode checks the first.
    if (decodeNode(bytes, block).birth !== walk.birth(i)) {
      throw new CatalogNodeError(block, `birth CP differs from its pointer's ${walk.birth(i)}`);
    }
  } else if (checkOf(digest) !== walk.check(i)) {
    throw new CorruptBlockError(block, kind, null);
  }
}

/**
 * The catch-up stream cut into parts (see `cpSyncParts`; the client counts
 * what it sends into `wire.baselineBytes` or `wire.resyncBytes`);
 * `onEntries` hears how many walk entries each record carried.
 *
 * @example
 * ```ts
 * declare const src: CatchUpSource;
 * declare function post(part: Uint8Array): Promise<void>;
 * for (const part of catchUpParts(src, () => {})) await post(part);
 * ```
 */
export function* catchUpParts(
  src: CatchUpSource,
  onEntries: (n: number) => void,
  partBytes?: number,
): Generator<Uint8Array<ArrayBuffer>> {
  yield* recordParts(
    catchUpRecords(src),
    (r) => {
      if (r.kind === "data" || r.kind === "copy" || r.kind === "check") onEntries(1);
      else if (r.kind === "logRef") onEntries(r.count);
    },
    partBytes,
  );
}

/**
 * The replication handshake: what a destination answers to
 * `GET /v1/repl/state` (and to `POST /v1/repl/log/reset`), and the rule by
 * which a source decides from it whether the pair can work. A pairing is
 * accepted only when every CP sync it leads to could succeed: the same volume,
 * the same pair generation, and a destination at the source's CP or the one
 * before with the same volume digest. A destination that is empty, further
 * behind (same volume and generation), or in a catch-up gets a catch-up; so
 * does an old source that rejoins the side promoted over it (a failback,
 * `refsync dest --rejoin`). Both appliances import this module; it imports no
 * storage.
 *
 * @example
 * ```ts
 * import { type DestState, judgePairing } from "./mod.ts";
 * declare const state: DestState;
 * const verdict = judgePairing(state, {
 *   volumeId: "00".repeat(16), pairGeneration: 1, cp: 3,
 *   volumeDigest: "ab".repeat(32), previousDigest: "cd".repeat(32),
 * });
 * if (verdict.kind === "refused" || verdict.kind === "fenced") console.error(verdict.reason);
 * ```
 *
 * @module
 */

/** Handshake answer: what the source resumes from. */
export interface DestState {
  /** Hex volume id of the destination's volume (random until its first CP from us). */
  volumeId: string;
  pairGeneration: number;
  /** Committed CP and its hex volume digest. */
  cp: number;
  volumeDigest: string;
  lsnCovered: number;
  /** Log range held. */
  firstLsn: number;
  lastLsn: number;
  /** True once it was promoted (it takes writes itself). */
  promoted: boolean;
  /**
   * The last LSN its promotion took from the old source (the promotion CP's
   * lsnCovered): the old source's log above it was never received, so never
   * acknowledged. Null in pair generation 1 (never promoted).
   */
  promotedAtLsn: number | null;
  /**
   * The catch-up recorded there (its image is incomplete until it commits), or
   * null: from CP `baseCp` (0: a baseline) to the source's CP `targetCp` of hex
   * digest `targetDigest`; `blocksDone` walk entries (`bytesDone` bytes) are
   * durable there, so a source that still has the target resumes after them.
   */
  catchUp: DestCatchUp | null;
  /**
   * Set while it rejoins after a promotion over it (`refsync dest --rejoin`,
   * a failback): it was the source of pair generation `fromGeneration`, and
   * agreed to have its divergent history replaced. `previousCp` and
   * `previousDigest`: the CP before its committed one, while its volume still
   * holds it (else null). Absent or null otherwise.
   */
  rejoin?: DestRejoin | null;
  /**
   * The reference frame format it reads (`REF_FORMAT` of
   * src/protocol/log-frame/ref-frame.ts; 2 adds PREFIX pieces). Absent: 1.
   */
  refFormat?: number;
  /**
   * The largest zstd window (log2 bytes) it decodes in a self-contained log
   * request (`LONG_WINDOW_LOG` of src/protocol/link-compress; a batch that
   * repeats itself goes so). Absent: 20, and no such request is sent.
   */
  linkWindowLog?: number;
  /**
   * The TCP port of its log stream (src/protocol/log-stream), on the host of
   * its URL. Absent or null: none (`--repl-port off`), log batches go as HTTP requests.
   */
  logStreamPort?: number | null;
}

/** A rejoining destination, as {@link DestState} reports it. */
export interface DestRejoin {
  fromGeneration: number;
  previousCp: number | null;
  previousDigest: string | null;
}

/**
 * What `POST /v1/repl/catch-up/begin` records on the destination before the
 * first block of a catch-up (hex digests and ids).
 */
export interface CatchUpBegin {
  /** The destination's committed CP it builds on (0: empty, a baseline). */
  baseCp: number;
  /** The source's CP it makes an image of, its volume digest and lsnCovered. */
  targetCp: number;
  targetDigest: string;
  lsnCovered: number;
  /** The source's volume id and pair generation. */
  volumeId: string;
  pairGeneration: number;
  /** Bytes of the blocks the catch-up brings (for the destination's progress). */
  totalBytes: number;
}

/** A destination's catch-up in progress, as {@link DestState} reports it. */
export interface DestCatchUp {
  baseCp: number;
  targetCp: number;
  targetDigest: string;
  blocksDone: number;
  bytesDone: number;
}

/** What the source's side of the handshake compares: its committed CP. */
export interface LocalCp {
  volumeId: string;
  pairGeneration: number;
  cp: number;
  volumeDigest: string;
  /** Hex digest of the CP before `cp`, or null when it is no longer on the volume. */
  previousDigest: string | null;
  /**
   * The LSN and the CP (with its hex digest) the promotion that began our
   * pair generation started from (our superblock's); absent or 0 when none
   * or unknown. A rejoining old source that holds that CP is resynced from it.
   */
  promotedAtLsn?: number;
  promotedFromCp?: number;
  promotedFromDigest?: string;
}

/** The verdict of a handshake. */
export type Pairing =
  /** The pair works; `resendLastCp`: the destination lacks our last CP. */
  | { kind: "ok"; resendLastCp: boolean }
  /**
   * The destination was promoted over this source: for good (a promotion is
   * never undone). `keepLsn`: the source's log up to it is in the promoted
   * history; the rest must be set aside (0: unknown, keep only what a
   * committed CP holds).
   */
  | { kind: "fenced"; reason: string; keepLsn: number }
  /**
   * The destination must be brought to our committed CP in one catch-up
   * stream from its CP `baseCp`: a baseline (0, an empty destination) or a
   * resync (it was away while we made CPs). `resume`: the catch-up it records
   * is to our committed CP, so it continues after what it holds.
   */
  | { kind: "catchUp"; baseCp: number; resume: boolean }
  /** The destination cannot mirror this source now; retried, it may be replaced. */
  | { kind: "refused"; reason: string };

/**
 * Decides from the destination's state whether this source may pair with it.
 *
 * @example
 * ```ts
 * import { type DestState, judgePairing, type LocalCp } from "./mod.ts";
 * declare const state: DestState;
 * declare const local: LocalCp;
 * const v = judgePairing({ ...state, pairGeneration: 2, promoted: true, promotedAtLsn: 41 }, local);
 * // v = { kind: "fenced", keepLsn: 41, reason: "the destination was promoted ..." }
 * ```
 */
export function judgePairing(dest: DestState, local: LocalCp): Pairing {
  if (dest.rejoin && !dest.promoted && dest.pairGeneration < local.pairGeneration) {
    return judgeRejoin(dest, dest.rejoin, local);
  }
  if (dest.promoted || dest.pairGeneration > local.pairGeneration) {
    const direct = dest.pairGeneration === local.pairGeneration + 1 && dest.promotedAtLsn !== null;
    const at = direct ? `, at LSN ${dest.promotedAtLsn}` : "";
    const generations = `pair generation ${dest.pairGeneration} > ours ${local.pairGeneration}`;
    return {
      kind: "fenced",
      keepLsn: direct ? dest.promotedAtLsn! : 0,
      reason: `the destination was promoted (${generations}${at}): ` +
        "this source takes no writes any more (no split brain)",
    };
  }
  // A destination that never committed a CP holds nothing yet: any volume id will be replaced.
  if (dest.cp > 0 && dest.volumeId !== local.volumeId) {
    return {
      kind: "refused",
      reason: `the destination holds another volume (${dest.volumeId}, ours ${local.volumeId}): ` +
        "unrelated histories",
    };
  }
  if (dest.cp > 0 && dest.pairGeneration !== local.pairGeneration) {
    const generations = `${dest.pairGeneration}, this source ${local.pairGeneration}`;
    return {
      kind: "refused",
      reason: `the destination holds pair generation ${generations}: it is the other side ` +
        "of a promotion and its history diverged; it cannot mirror this source",
    };
  }
  if (dest.catchUp !== null) {
    const c = dest.catchUp;
    if (c.targetCp > local.cp) {
      return {
        kind: "refused",
        reason: `the destination is catching up to CP ${c.targetCp}, past this source's CP ` +
          `${local.cp}: unrelated histories`,
      };
    }
    const resume = c.targetCp === local.cp && c.targetDigest === local.volumeDigest;
    return { kind: "catchUp", baseCp: c.baseCp, resume };
  }
  // A destination without a CP gets our image (its log too may be ours: under the available
  // policy a pair's first CPs may all be deferred); one behind us gets what changed.
  if ((dest.cp === 0 && local.cp > 1) || (dest.cp > 0 && dest.cp < local.cp - 1)) {
    return { kind: "catchUp", baseCp: dest.cp, resume: false };
  }
  if (dest.cp > local.cp || dest.cp < local.cp - 1) {
    return {
      kind: "refused",
      reason: `the destination is at CP ${dest.cp} and this source at CP ${local.cp}: ` +
        "unrelated histories (a CP sync bridges one CP)",
    };
  }
  const want = dest.cp === local.cp ? local.volumeDigest : local.previousDigest;
  // An empty destination one CP behind takes that CP's sync over its empty image, which our
  // CP 0 must be; when that is unknown here (the slot of CP 0 overwritten by a CP that tore),
  // it takes our image instead: it holds nothing a baseline could lose.
  if (dest.cp === 0 && local.cp === 1 && (want === null || dest.volumeDigest !== want)) {
    return { kind: "catchUp", baseCp: 0, resume: false };
  }
  if (want === null) {
    return {
      kind: "refused",
      reason: `the destination is at CP ${dest.cp}, which is no longer on this source's volume`,
    };
  }
  if (dest.volumeDigest !== want) {
    return {
      kind: "refused",
      reason: `the volumes diverged at CP ${dest.cp}: digests differ`,
    };
  }
  return { kind: "ok", resendLastCp: dest.cp === local.cp - 1 };
}

/**
 * A failback: the old source of an earlier pair generation rejoins us, its
 * promoted side. It holds the CP our promotion started from (its committed
 * one, or the one before when it committed a CP we never got): a resync from
 * there. Else a baseline over what it holds (`--rejoin` agreed to that).
 * Another volume stays refused: a misdirected URL never wipes a volume.
 */
function judgeRejoin(dest: DestState, rejoin: DestRejoin, local: LocalCp): Pairing {
  if (dest.cp > 0 && dest.volumeId !== local.volumeId) {
    return {
      kind: "refused",
      reason: `the rejoining destination holds another volume (${dest.volumeId}, ours ` +
        `${local.volumeId}): unrelated histories`,
    };
  }
  if (dest.catchUp !== null) {
    // Its first catch-up from us is under way: resume it (or restart it to our CP).
    const c = dest.catchUp;
    const resume = c.targetCp === local.cp && c.targetDigest === local.volumeDigest;
    return { kind: "catchUp", baseCp: c.baseCp, resume };
  }
  const from = local.promotedFromCp ?? 0;
  const digest = local.promotedFromDigest;
  const holds = from > 0 && (
    (dest.cp === from && dest.volumeDigest === digest) ||
    (rejoin.previousCp === from && rejoin.previousDigest === digest)
  );
  return { kind: "catchUp", baseCp: holds ? from : 0, resume: false };
}

/**
 * The LSN above which a rejoining destination's log is set aside before any
 * log goes there (its divergent tail: records our promotion never received,
 * `local.promotedAtLsn`), or null when there is nothing to set aside. Only
 * before its first catch-up from us is recorded: from then on its log above
 * that LSN holds records we forwarded ourselves (acknowledged, ours).
 *
 * @example
 * ```ts
 * import { type DestState, divergentTailAfter, type LocalCp } from "./mod.ts";
 * declare const state: DestState;
 * declare const local: LocalCp;
 * const after = divergentTailAfter(state, local); // e.g. 97: its LSNs 98.. are set aside
 * ```
 */
export function divergentTailAfter(dest: DestState, local: LocalCp): number | null {
  if (!dest.rejoin || dest.catchUp !== null || dest.pairGeneration >= local.pairGeneration) {
    return null;
  }
  const keep = local.promotedAtLsn ?? 0;
  return dest.lastLsn > keep ? keep : null;
}

/**
 * A change of the destination's log range asked by its source at the
 * handshake: cut a tail the source lost before fsyncing it (`truncateAfter`),
 * or skip to what a committed CP covers (`lastLsn`), or, on a rejoining
 * destination (a failback), set aside the divergent tail the new source never
 * received (`quarantineAfter`: its `promotedAtLsn`). `ifLastLsn` is where the
 * destination's log ended when the source looked: the destination refuses the
 * reset when it ends elsewhere, so a reset that arrives late (a retry, a
 * duplicate) can never cut records acknowledged since.
 *
 * @example
 * ```ts
 * import type { LogReset } from "./mod.ts";
 * const reset: LogReset = { truncateAfter: 10, ifLastLsn: 12 };
 * ```
 */
export type LogReset =
  | { truncateAfter: number; ifLastLsn: number }
  | { lastLsn: number; ifLastLsn: number }
  | { quarantineAfter: number; ifLastLsn: number };

/**
 * The destination's CP sync applier: rebuilds each block the source wrote from
 * what the destination holds (its log, its volume) or from DATA, verifies every
 * reference, and commits the CP only when its content digest equals the
 * source's. A reference that cannot be resolved or verified is answered with a
 * request for DATA; nothing unverified is ever committed (invariant 6).
 *
 * {@link CpApplier} has one handler per record kind; {@link applyCpSync} feeds
 * it a stream.
 *
 * @module
 */
import { BLOCK_SIZE, equalBytes } from "../bytes/mod.ts";
import { blake3 } from "../hash/blake3.ts";
import { errorMessage, RefsyncError } from "../errors/mod.ts";
import { blockCheck, type CpRecord, readRecords, runCheck } from "../protocol/cp-sync/records.ts";
import type { WireStats } from "../protocol/cp-sync/stats.ts";
import type { ObjectStore } from "../storage/objects/store.ts";
import { cpContentDigest, nextVolumeDigest } from "../storage/volume/digest.ts";
import { decodeSuperblock, type Superblock } from "../storage/volume/superblock.ts";
import { Bitmap } from "../storage/volume/bitmap.ts";
import type { CpTransaction, Volume } from "../storage/volume/volume.ts";
import { endOfSlice } from "../storage/time-slice.ts";

/** The outcome of one CP sync request. */
export type ApplyResult =
  | { committed: true; cp: number; digest: Uint8Array }
  | { committed: false; need: number[]; reason: string };

/** A record of one kind. */
type RecordOf<K extends CpRecord["kind"]> = Extract<CpRecord, { kind: K }>;

/** A catch-up keeps its progress every this many walk entries (4 MiB of blocks). */
const PROGRESS_ENTRIES = 1024;

/**
 * Applies one CP sync stream to `store`'s volume.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const request: Request;
 * const result = await applyCpSync(store, request.body!, newWireStats());
 * if (!result.committed) console.log("resend as DATA:", result.need);
 * ```
 */
export async function applyCpSync(
  store: ObjectStore,
  body: ReadableStream<Uint8Array>,
  wire: WireStats,
  signal?: AbortSignal,
): Promise<ApplyResult> {
  return await applyStream(
    new CpApplier(store, wire),
    store,
    body,
    (n) => wire.cpSyncBytesRaw += n, // the route counted the bytes received
    signal,
  );
}

/**
 * Applies one catch-up stream (`POST /v1/repl/catch-up`): CATCH_UP, the
 * blocks of the walk from `resumeFrom` on, COMMIT.
 *
 * @example
 * ```ts
 * import { newWireStats } from "../protocol/cp-sync/stats.ts";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * declare const request: Request;
 * const result = await applyCatchUp(store, request.body!, newWireStats());
 * ```
 */
export async function applyCatchUp(
  store: ObjectStore,
  body: ReadableStream<Uint8Array>,
  wire: WireStats,
  signal?: AbortSignal,
): Promise<ApplyResult> {
  // The route counted the bytes received (baselineBytes or resyncBytes).
  return await applyStream(new CpApplier(store, wire), store, body, () => {}, signal);
}

async function applyStream(
  applier: CpApplier,
  store: ObjectStore,
  body: ReadableStream<Uint8Array>,
  count: (n: number) => void,
  signal?: AbortSignal,
): Promise<ApplyResult> {
  try {
    for await (const r of decodeRecords(body, count, signal)) {
      await endOfSlice(store.options.clock); // log forwarding keeps flowing while a big CP is applied
      const result = await applier.apply(r);
      if (result) return result;
    }
    throw new RefsyncError("bad_request", "CP sync stream ended before COMMIT");
  } catch (e) {
    // Storage failures (EIO, ENOSPC, a broken invariant) propagate as what they are.
    applier.abort();
    throw e;
  }
}

/**
 * The state of one CP sync being applied, and a handler per record kind.
 * The source chooses the blocks; one live in our committed CP would
 * overwrite the image a crash falls back to, and one written twice is
 * ambiguous: such a stream is wrong (`conflict`), not this disk.
 */
export class CpApplier {
  readonly #store: ObjectStore;
  readonly #volume: Volume;
  readonly #wire: WireStats;
  /** The CP this sync builds on. */
  readonly #committed: Superblock;
  #tx: CpTransaction | null = null;
  /** The BEGIN record: the COMMIT's superblock must say the same. */
  #begin: RecordOf<"begin"> | null = null;
  /** Blocks whose reference could not be resolved or checked: the source resends them as DATA. */
  readonly #need = new Set<number>();
  readonly #reasons: string[] = [];
  readonly #released: number[] = [];
  readonly #claimed = new Bitmap();
  /**
   * A catch-up (CATCH_UP instead of BEGIN): walk entries done so far (from
   * its `resumeFrom`), and those last made durable.
   */
  #catchUp: { entries: number; saved: number } | null = null;

  constructor(store: ObjectStore, wire: WireStats) {
    this.#store = store;
    this.#volume = store.volume;
    this.#wire = wire;
    this.#committed = store.volume.superblock;
  }

  /** Applies one record; resolves with the outcome at COMMIT, else null. */
  async apply(r: CpRecord): Promise<ApplyResult | null> {
    if (r.kind === "begin") {
      this.begin(r);
      return null;
    }
    if (r.kind === "catchUp") {
      this.catchUp(r);
      return null;
    }
    if (!this.#tx) throw new RefsyncError("bad_request", "CP sync: a record before BEGIN");
    // Bounded memory: write buffered blocks out as the stream goes, not all at COMMIT.
    if (this.#tx.shouldFlush) this.#tx.flush();
    switch (r.kind) {
      case "data":
        this.data(r);
        break;
      case "logRef":
        this.logRef(r);
        break;
      case "patch":
        this.patch(r);
        break;
      case "copy":
        this.copy(r);
        break;
      case "diff":
        this.diff(r);
        break;
      case "free":
        if (this.#catchUp) throw new RefsyncError("bad_request", "catch-up: FREE in a catch-up");
        this.free(r);
        break;
      case "check":
        this.check(r);
        break;
      case "commit":
        return await this.commit(r);
    }
    if (this.#catchUp) await this.#advance(r.kind === "logRef" ? r.count : 1);
    return null;
  }

  /**
   * CATCH_UP: the catch-up recorded here (its target, base and identity), resumed
   * at `resumeFrom`, at most where this destination's durable progress is.
   */
  catchUp(r: RecordOf<"catchUp">): void {
    if (this.#tx) throw new RefsyncError("bad_request", "catch-up: CATCH_UP after BEGIN");
    const recorded = this.#store.catchUp;
    const committed = this.#committed;
    if (
      recorded === null || recorded.targetCp !== r.cp || recorded.baseCp !== r.baseCp ||
      recorded.targetDigest !== r.targetDigest.toHex() ||
      recorded.volumeId !== r.volumeId.toHex() || recorded.pairGeneration !== r.pairGeneration
    ) {
      throw new RefsyncError(
        "conflict",
        `no catch-up to CP ${r.cp} from CP ${r.baseCp} of this volume is recorded here; begin it again`,
      );
    }
    const base = committed.cp === r.baseCp && equalBytes(committed.volumeDigest, r.baseDigest);
    if (!base && !this.#store.catchUpReplaces(r.baseCp)) {
      throw new RefsyncError(
        "conflict",
        `a catch-up from CP ${r.baseCp}, but this destination is at CP ${committed.cp} (or digests differ)`,
      );
    }
    if (r.resumeFrom > recorded.blocksDone) {
      throw new RefsyncError(
        "conflict",
        `a catch-up resumed at entry ${r.resumeFrom}, but only ${recorded.blocksDone} are durable here`,
      );
    }
    this.#catchUp = { entries: r.resumeFrom, saved: r.resumeFrom };
    this.#tx = this.#store.catchUpTransaction();
  }

  /** CHECK: a block this destination already holds; kept when its bytes match, else asked for. */
  check(r: RecordOf<"check">): void {
    if (!this.#catchUp) throw new RefsyncError("bad_request", "CP sync: CHECK outside a catch-up");
    if (this.#claimed.has(r.block)) {
      throw new RefsyncError("conflict", `catch-up names block ${r.block} twice`);
    }
    this.#claimed.set(r.block);
    const held = this.#tx!.readBlock(r.block);
    if (!equalBytes(blockCheck(blake3(held)), r.check)) {
      this.#fail(r.block, `CHECK of block ${r.block}: this destination holds other bytes`);
    }
  }

  /** `n` more walk entries are written; their progress is made durable every few MiB. */
  async #advance(n: number): Promise<void> {
    const c = this.#catchUp!;
    // Progress counts a prefix of the walk that is all here: it stops at the first need.
    if (this.#need.size > 0) return;
    c.entries += n;
    if (c.entries - c.saved < PROGRESS_ENTRIES) return;
    await this.#store.recordCatchUpProgress(this.#tx!, c.entries, c.entries * BLOCK_SIZE);
    c.saved = c.entries;
  }

  /** Gives up the sync: nothing of it is committed, its blocks stay free. */
  abort(): void {
    this.#tx?.abort();
    this.#tx = null;
  }

  /** BEGIN: the CP after ours, of our volume and pair generation, over the same image. */
  begin(r: RecordOf<"begin">): void {
    const committed = this.#committed;
    if (this.#tx) throw new RefsyncError("bad_request", "CP sync: BEGIN twice");
    // A destination's first CP makes it its source's volume; after that it is that volume only.
    if (committed.cp > 0 && !equalBytes(r.volumeId, committed.volumeId)) {
      throw new RefsyncError(
        "conflict",
        `CP sync of volume ${r.volumeId.toHex()}, but this destination holds volume ${committed.volumeId.toHex()}`,
      );
    }
    if (r.cp !== committed.cp + 1) {
      throw new RefsyncError(
        "conflict",
        `CP sync for CP ${r.cp}, but this destination is at CP ${committed.cp}: it takes the sync of CP ${
          committed.cp + 1
        } or ${committed.cp === 0 ? "a baseline" : `a resync from CP ${committed.cp}`}`,
      );
    }
    if (r.pairGeneration !== committed.pairGeneration && committed.cp > 0) {
      throw new RefsyncError(
        "conflict",
        `pair generation ${r.pairGeneration} != ${committed.pairGeneration}`,
      );
    }
    if (!equalBytes(r.previousDigest, committed.volumeDigest)) {
      throw new RefsyncError(
        "conflict",
        `the volumes diverged before CP ${r.cp}: digests differ`,
      );
    }
    this.#begin = r;
    this.#tx = this.#volume.beginCp();
  }

  /** DATA: the block's bytes. */
  data(r: RecordOf<"data">): void {
    this.#wire.cpBlocks.data++;
    const bytes = r.bytes.slice();
    this.#write(r.block, bytes, blake3(bytes));
  }

  /** LOG_REF: whole blocks from consecutive 4 KiB of one record of our log. */
  logRef(r: RecordOf<"logRef">): void {
    this.#wire.cpBlocks.logRef += r.count;
    // The digests are of the bytes read back (kept from receipt only when those are the same).
    const read = this.#store.log.readRecordBlocks(r.lsn, r.payloadOffset, r.count);
    if (read === null) {
      this.#fail(r.block, `LOG_REF to LSN ${r.lsn} not in this log`, r.count);
      return;
    }
    const { bytes: run, digests: runDigests } = read;
    if (!equalBytes(runCheck(runDigests), r.check)) {
      this.#fail(r.block, `LOG_REF to LSN ${r.lsn}: content check failed`, r.count);
      return;
    }
    // The run was read into a buffer of its own: its blocks are views of it, not copies.
    for (let i = 0; i < r.count; i++) {
      const bytes = run.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
      this.#write(r.block + i, bytes, runDigests.subarray(i * 32, (i + 1) * 32));
    }
  }

  /** PATCH: slices of log records over the block's previous version. */
  patch(r: RecordOf<"patch">): void {
    this.#wire.cpBlocks.patch++;
    const base = this.#liveBlock(r.base);
    if (base === null) {
      this.#fail(r.block, `PATCH base ${r.base} is not live here`);
      return;
    }
    const content = base.slice();
    for (const s of r.slices) {
      const bytes = this.#store.log.readRecordPayload(s.lsn, s.payloadOffset, s.length);
      if (bytes === null) {
        this.#fail(r.block, `PATCH of block ${r.block}: a log slice is missing`);
        return;
      }
      content.set(bytes, s.at);
    }
    this.#verifyAndWrite(r.block, content, r.check);
  }

  /** COPY: a block live in our committed CP holds the same bytes. */
  copy(r: RecordOf<"copy">): void {
    this.#wire.cpBlocks.copy++;
    const from = r.from === 0 ? null : this.#liveBlock(r.from);
    if (from === null) this.#fail(r.block, `COPY from ${r.from}, which is not live here`);
    else this.#verifyAndWrite(r.block, from.slice(), r.check);
  }

  /** DIFF: byte ranges over the block's previous version (metadata blocks). */
  diff(r: RecordOf<"diff">): void {
    this.#wire.cpBlocks.diff++;
    const base = this.#liveBlock(r.base);
    if (base === null) {
      this.#fail(r.block, `DIFF base ${r.base} is not live here`);
      return;
    }
    const content = base.slice();
    for (const x of r.ranges) content.set(x.bytes, x.at);
    this.#verifyAndWrite(r.block, content, r.check);
  }

  /** FREE: blocks this CP releases; each must be live here. */
  free(r: RecordOf<"free">): void {
    for (const b of r.blocks) {
      if (!this.#volume.isLive(b)) {
        throw new RefsyncError("conflict", `FREE of block ${b}, which is not live here`);
      }
      this.#released.push(b);
    }
  }

  /**
   * COMMIT: the source's superblock. Committed only when every block was
   * resolved and the volume digest computed here equals the one it carries
   * (invariant 4); otherwise the blocks to resend, and nothing committed.
   */
  async commit(r: RecordOf<"commit">): Promise<ApplyResult> {
    const tx = this.#tx!;
    if (this.#need.size > 0) {
      // A catch-up keeps what it wrote: the source resumes after the durable prefix.
      if (this.#catchUp) await this.#saveProgress();
      this.abort();
      return {
        committed: false,
        need: [...this.#need].sort((a, b) => a - b),
        reason: this.#reasons.join("; "),
      };
    }
    if (this.#catchUp) {
      const done = await this.#store.commitCatchUp(tx, r.superblock);
      this.#tx = null;
      if (!done.committed) {
        this.#need.clear();
        return { committed: false, need: done.need, reason: done.reason };
      }
      return { committed: true, cp: done.superblock.cp, digest: done.superblock.volumeDigest };
    }
    const sb = decodeSuperblock(r.superblock);
    if (sb === null || sb.cp !== tx.cp) {
      throw new RefsyncError("bad_request", "CP sync: the COMMIT superblock is invalid");
    }
    const begin = this.#begin!;
    if (!equalBytes(sb.volumeId, begin.volumeId) || sb.pairGeneration !== begin.pairGeneration) {
      throw new RefsyncError(
        "bad_request",
        "CP sync: the COMMIT superblock is of another volume or pair generation than its BEGIN",
      );
    }
    const expected = nextVolumeDigest(
      this.#committed.volumeDigest,
      cpContentDigest(tx.written),
      sb,
    );
    if (!equalBytes(expected, sb.volumeDigest)) {
      throw new RefsyncError(
        "conflict",
        `CP ${sb.cp}: the applied content digest differs from the source's; not committed`,
      );
    }
    await tx.commitEncoded(r.superblock);
    this.#tx = null;
    this.#store.adoptCommitted(sb.cp, this.#released, sb.lsnCovered);
    return { committed: true, cp: sb.cp, digest: sb.volumeDigest };
  }

  /** Blocks `first` .. `first + count - 1` are needed as DATA. */
  #fail(first: number, reason: string, count = 1): void {
    for (let b = first; b < first + count; b++) this.#need.add(b);
    if (this.#reasons.length < 5) this.#reasons.push(reason);
  }

  async #saveProgress(): Promise<void> {
    const c = this.#catchUp!;
    if (c.entries === c.saved) return;
    await this.#store.recordCatchUpProgress(this.#tx!, c.entries, c.entries * BLOCK_SIZE);
    c.saved = c.entries;
  }

  #claim(block: number): void {
    // A catch-up may write over its base (the image is declared incomplete meanwhile).
    if (block < 2 || (!this.#catchUp && this.#volume.isLive(block))) {
      throw new RefsyncError(
        "conflict",
        `CP sync writes block ${block}, which is live in CP ${this.#committed.cp} here`,
      );
    }
    if (this.#claimed.has(block)) {
      throw new RefsyncError("conflict", `CP sync writes block ${block} twice`);
    }

    this.#claimed.set(block);
    this.#tx!.claim(block);
  }

  #write(block: number, bytes: Uint8Array, digest: Uint8Array): void {
    this.#claim(block);
    const tx = this.#tx!;
    tx.written.setDigest(tx.write(block, bytes, "data", 0), digest);
  }

  #verifyAndWrite(block: number, content: Uint8Array, check: Uint8Array): void {
    const digest = blake3(content);
    if (!equalBytes(blockCheck(digest), check)) {
      this.#fail(block, `block ${block}: content check failed`);
      return;
    }
    this.#write(block, content, digest);
  }

  /** A block of our committed CP (block 0, a hole, reads as zeros), or null when not live. */
  #liveBlock(block: number): Uint8Array | null {
    if (block === 0) return new Uint8Array(BLOCK_SIZE);
    return this.#volume.isLive(block) ? this.#volume.readBlock(block) : null;
  }
}

/**
 * The records of `body`; what the stream itself gets wrong (a malformed or
 * truncated record, a body cut off) is the sender's fault: `bad_request`.
 */
async function* decodeRecords(
  body: ReadableStream<Uint8Array>,
  count: (n: number) => void,
  signal?: AbortSignal,
): AsyncGenerator<CpRecord> {
  try {
    yield* readRecords(body, count, signal);
  } catch (e) {
    if (e instanceof RefsyncError) throw e;
    throw new RefsyncError("bad_request", `CP sync: ${errorMessage(e)}`);
  }
}

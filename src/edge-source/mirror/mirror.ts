/**
 * The source's side of the pair: handshake with the destination, log
 * forwarding (strict sync) and the CP sync of every committed CP.
 *
 * Handshake ({@link judgePairing}): the destination must not have been
 * promoted, must hold our volume and pair generation, and be at our CP or the
 * one before (then that CP is sent again) with the same digest; any other
 * pairing could never sync a CP and is refused (and retried: the destination
 * may be replaced). Log: a destination ahead of our log (a tail we lost before
 * fsyncing it, so never acknowledged) is truncated to our last LSN; one behind
 * our oldest record skips to it when its committed CP covers the gap.
 *
 * Fencing (the destination was promoted): final. No write is logged from then
 * on (403 `fenced`), and our log tail the promoted side never received is set
 * aside in `DATA/quarantine/` before the writers waiting on it are answered.
 * CPs commit locally only once the destination holds their records, so no
 * committed CP holds a write it refused.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";
import { newWireStats, type WireStats } from "../../protocol/cp-sync/stats.ts";
import { type DestState, judgePairing } from "../../protocol/handshake/mod.ts";
import type { Appended } from "../../storage/log/mod.ts";
import type { CheckpointResult, ObjectStore } from "../../storage/objects/store.ts";
import { blockCheck, type CpRecord, runCheck } from "../../protocol/cp-sync/records.ts";
import { BlockLocator, contentMatches } from "./block-locator.ts";
import { type CpSyncMode, cpSyncParts } from "./cp-sync-sender.ts";
import { catchUpParts } from "./catch-up-sender.ts";
import { type BirthWalk, walkBornAfter } from "../../storage/objects/catch-up-walk.ts";
import { encodeSuperblock, type Superblock } from "../../storage/volume/superblock.ts";
import { sleep } from "../../runtime/clock.ts";
import { type LinkChange, type LinkState, LogForwarder } from "./log-forwarder.ts";
import { HttpReplicaClient } from "./http-client.ts";
import type { CpPartAnswer, ReplicaClient } from "./replica-client.ts";
import { type Clock, systemClock } from "../../runtime/clock.ts";

/** A catch-up's progress, as `stats().mirror.progress` shows it (bytes). */
export interface CatchUpProgress {
  kind: "baseline" | "resync";
  baseCp: number;
  targetCp: number;
  done: number;
  total: number;
}

/** A catch-up decided at a handshake. */
interface PlannedCatchUp {
  kind: "baseline" | "resync";
  target: Superblock;
  targetBytes: Uint8Array;
  baseCp: number;
  baseDigest: Uint8Array;
  walk: BirthWalk;
  checkThrough: number;
  resumed: boolean;
}

/** Configuration of the mirror. */
export interface MirrorOptions {
  /** Base URL of the destination appliance. */
  url: string;
  token: string;
  syncTimeoutMs: number;
  mode: CpSyncMode;
  /** Where a fenced source sets its unacknowledged log tail aside (`DATA/quarantine`). */
  quarantineDir: string;
  logger?: Logger;
  /** How requests reach the destination. Default HTTP to `url` with `token`. */
  client?: ReplicaClient;
  /** Timeouts, retries and outage durations (the simulator's). Default the system clock. */
  clock?: Clock;
}

/**
 * Connects a source store to its destination.
 *
 * @example
 * ```ts
 * import { ObjectStore } from "../../storage/objects/store.ts";
 * const url = "http://127.0.0.1:8081";
 * const token = "pair-token";
 * const dir = await Deno.makeTempDir();
 * const quarantineDir = `${dir}/quarantine`;
 * const opts = { cpDirtyBytes: 64 << 20, maxObjectBytes: 5 << 30 };
 * const mirror = new Mirror({ url, token, syncTimeoutMs: 5000, mode: "refs", quarantineDir });
 * const store = await ObjectStore.open(dir, { ...opts, ...mirror.hooks });
 * mirror.attach(store);
 * await mirror.admitWrite(); // before a write is logged: 403 once fenced, 503 while refused
 * ```
 */
export class Mirror {
  readonly options: MirrorOptions;
  readonly wire: WireStats = newWireStats();
  readonly #client: ReplicaClient;
  readonly #clock: Clock;
  #store: ObjectStore | null = null;
  #forwarder: LogForwarder | null = null;
  #log: Logger;
  #destCp = -1;
  #handshakes = 0;
  #downSince = 0;
  /** Set when fencing starts: CP hooks give up at once (the set-aside waits for the CP). */
  #fencing: RefsyncError | null = null;
  #fencingStarted: { promise: Promise<never>; reject: (e: RefsyncError) => void };
  /** What the fencing set aside. */
  #quarantine: { file: string; firstLsn: number; lastLsn: number } | null = null;
  /** The catch-up (baseline or resync) running or pending, for the stats: bytes done of total. */
  #catchUp: CatchUpProgress | null = null;
  /** The catch-up running in the background, and what it sends; CP syncs wait for it. */
  #catchUpRun: Promise<void> | null = null;
  #catchUpPlan: PlannedCatchUp | null = null;
  #closing = false;
  readonly locator: BlockLocator = new BlockLocator();

  constructor(options: MirrorOptions) {
    this.options = options;
    this.#client = options.client ??
      new HttpReplicaClient({ url: options.url, token: options.token });
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? rootLogger()).child({ destination: options.url });
    let reject!: (e: RefsyncError) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    promise.catch(() => {}); // only ever raced against
    this.#fencingStarted = { promise, reject };
  }

  /** The store hooks: pass them to ObjectStore.open. */
  get hooks(): {
    replicate: (written: Appended[]) => Promise<void>;
    syncCheckpoint: (cp: CheckpointResult) => Promise<void>;
    ready: () => Promise<void>;
    mirrorHolds: (lsn: number) => Promise<void>;
    mirrorAckedLsn: () => number;
  } {
    return {
      replicate: (written) => {
        if (this.options.mode === "refs") this.locator.addLogRecords(written);
        return this.#forwarder!.forward(written);
      },
      syncCheckpoint: (cp) => this.#syncCheckpoint(cp),
      ready: () => this.#untilFenced(() => this.#ready()),
      mirrorHolds: (lsn) =>
        this.#untilFenced(() => this.#forwarder!.waitAcked(lsn, this.options.syncTimeoutMs)),
      mirrorAckedLsn: () => this.#forwarder!.ackedLsn,
    };
  }

  /** CPs wait for the first handshake: it decides whether our last CP must be sent again. */
  async #ready(): Promise<void> {
    if (this.#handshakes === 0) await this.#forwarder!.whenConnected(this.options.syncTimeoutMs);
  }

  /** Waits for `wait()`, abandoned as soon as fencing starts. */
  #untilFenced(wait: () => Promise<void>): Promise<void> {
    if (this.#fencing) return Promise.reject(this.#fencing);
    const waiting = wait();
    waiting.catch(() => {}); // when fencing wins the race, this rejection is nobody's
    return Promise.race([waiting, this.#fencingStarted.promise]);
  }

  /**
   * Resolves when a write may be logged: the pair is connected (or becomes so
   * within --sync-timeout). Rejects, before anything is logged, with `fenced`
   * (403) once the destination was promoted, and with `unavailable` (503) at
   * once while the destination refuses this source, or after --sync-timeout
   * while it is unreachable.
   */
  admitWrite(): Promise<void> {
    if (this.#fencing) return Promise.reject(this.#fencing);
    return this.#forwarder!.whenConnected(this.options.syncTimeoutMs);
  }

  /** Starts forwarding for `store` (opened with {@link Mirror.hooks}). */
  attach(store: ObjectStore): void {
    this.#store = store;
    this.#forwarder = new LogForwarder(store.log, {
      connect: () => this.#handshake(),
      send: (frames) => this.#client.sendFrames(frames),
    }, {
      syncTimeoutMs: this.options.syncTimeoutMs,
      clock: this.#clock,
      wire: this.wire,
      onLink: (change) => this.#logLink(change),
    });
    this.#forwarder.start();
  }

  /** Where the link to the destination stands. */
  get state(): LinkState {
    return this.#forwarder?.link ?? "connecting";
  }

  /** Log bytes written here and not yet acknowledged by the destination. */
  get lagBytes(): number {
    // The HTTP server, the only caller, stops before the store closes.
    return this.#store?.log.bytesAfter(this.#forwarder?.ackedLsn ?? 0) ?? 0;
  }

  /** Mirror state for `/v1/admin/stats`. */
  stats(): Record<string, unknown> {
    const f = this.#forwarder;
    return {
      mirror: {
        destination: this.options.url,
        mode: this.options.mode,
        state: this.state,
        connected: f?.connected ?? false,
        ackedLsn: f?.ackedLsn ?? 0,
        destinationCp: this.#destCp,
        lastError: f?.lastError ?? null,
        quarantine: this.#quarantine,
        progress: this.#catchUp && { ...this.#catchUp },
      },
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#forwarder?.stop();
    await this.#catchUpRun;
  }

  /** One log line per change of the link (never one per retry). */
  #logLink(change: LinkChange): void {
    const { from, to, cause, retryInMs } = change;
    if (from === "connected") {
      this.#downSince = this.#clock.monotonic();
      this.#log.warn("mirror.lost", { cause, retryInMs });
    }
    if (to === "refused") {
      this.#log.error("mirror.refused", { reason: cause, retryInMs });
    } else if (to === "down" && from !== "connected") {
      this.#log.warn("mirror.unreachable", { cause, retryInMs });
    }
  }

  async #state(): Promise<DestState> {
    return await this.#client.state();
  }

  async #handshake(): Promise<number> {
    const store = this.#store!;
    const sb = store.superblock;
    const prev = store.volume.previousSuperblock;
    let state = await this.#state();
    const verdict = judgePairing(state, {
      volumeId: sb.volumeId.toHex(),
      pairGeneration: sb.pairGeneration,
      cp: sb.cp,
      volumeDigest: sb.volumeDigest.toHex(),
      previousDigest: prev && prev.cp === sb.cp - 1 ? prev.volumeDigest.toHex() : null,
    });
    if (verdict.kind === "fenced") throw await this.#fence(verdict.reason, verdict.keepLsn);
    if (verdict.kind === "refused") throw new RefsyncError("conflict", verdict.reason);
    let catchUp: PlannedCatchUp | null = null;
    if (verdict.kind === "catchUp") {
      catchUp = this.#catchUpRun ? null : this.#planCatchUp(state, verdict.baseCp, verdict.resume);
      if (catchUp && !verdict.resume) {
        // Recorded there before its first block: from then on its image is incomplete, and its
        // log may skip to what the target covers.
        state = await this.#client.beginCatchUp({
          baseCp: catchUp.baseCp,
          targetCp: catchUp.target.cp,
          targetDigest: catchUp.target.volumeDigest.toHex(),
          lsnCovered: catchUp.target.lsnCovered,
          volumeId: catchUp.target.volumeId.toHex(),
          pairGeneration: catchUp.target.pairGeneration,
          totalBytes: catchUp.walk.length * BLOCK_SIZE,
        });
      }
    } else if (verdict.resendLastCp && !store.needsSync) {
      // We committed a CP the destination lacks, and restarted since: send it again from the volume.
      store.markUnsynced(store.rebuildLastCheckpoint());
    }
    const log = store.log;
    if (state.lastLsn > log.lastLsn) {
      state = await this.#client.resetLog({
        truncateAfter: log.lastLsn,
        ifLastLsn: state.lastLsn,
      });
    }
    // A catch-up's target holds every record it covers: the destination's log may skip to
    // them (a destination restored from an old copy lacks records we saw acknowledged).
    const plan = catchUp ?? this.#catchUpPlan;
    const skipTo = Math.max(
      log.firstLsn - 1,
      plan ? Math.min(this.#forwarder!.ackedLsn, plan.target.lsnCovered) : 0,
    );
    if (state.lastLsn < skipTo) {
      state = await this.#client.resetLog({ lastLsn: skipTo, ifLastLsn: state.lastLsn });
    }
    this.#destCp = state.cp;
    if (catchUp) this.#startCatchUp(catchUp, state);
    const fields = { cp: state.cp, lastLsn: state.lastLsn };
    if (this.#handshakes++ === 0) this.#log.info("mirror.connected", fields);
    else {this.#log.info("mirror.reconnected", {
        ...fields,
        downMs: Math.round(this.#clock.monotonic() - this.#downSince),
      });}
    return state.lastLsn;
  }

  /**
   * The destination was promoted over us: refuse every write from now on,
   * give up waiting CPs, set aside the log tail it never received, and only
   * then let the forwarder answer the writers waiting on that tail (403).
   * Resolves with the error the forwarder ends with.
   */
  async #fence(reason: string, keepLsn: number): Promise<RefsyncError> {
    const error = new RefsyncError("fenced", reason);
    this.#fencing = error;
    this.#fencingStarted.reject(error);
    try {
      this.#quarantine = await this.#store!.fence(reason, keepLsn, this.options.quarantineDir);
      this.#log.error("mirror.fenced", {
        reason,
        keptLsn: this.#store!.log.lastLsn,
        quarantine: this.#quarantine?.file ?? null,
        setAside: this.#quarantine
          ? { firstLsn: this.#quarantine.firstLsn, lastLsn: this.#quarantine.lastLsn }
          : null,
      });
    } catch (e) {
      // Writes stay refused; what could not be set aside stays in the log, never acknowledged.
      this.#log.error("mirror.fenced", { reason, quarantineFailed: errorMessage(e) });
    }
    return error;
  }

  async #syncCheckpoint(cp: CheckpointResult): Promise<void> {
    if (this.#fencing) throw this.#fencing;
    // A CP committed during a catch-up waits for it: then it is a CP sync over its target.
    await this.#catchUpRun;
    if (this.#destCp >= cp.superblock.cp) return;
    // The references resolve against the destination's log: mirrorHolds saw it hold them.
    const forceData = new Set<number>();
    let lastMessage = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      const parts = cpSyncParts(cp, {
        volume: this.#store!.volume,
        mode: this.options.mode,
        forceData,
        locate: (digest, block) => this.#locate(cp, digest, block),
      }, this.wire);
      const res = await this.#sendParts(cp.superblock.cp, parts);
      if (res instanceof Error) {
        lastMessage = res.message;
        break;
      }
      if (res.status === 200) {
        this.#destCp = cp.superblock.cp;
        this.#indexWritten(cp);
        return;
      }
      lastMessage = res.message ?? `status ${res.status}`;
      if (res.status === 409 && res.need) {
        for (const b of res.need) forceData.add(b);
        continue;
      }
      break;
    }
    // The destination may have committed although its answer was lost.
    const state = await this.#state().catch(() => null);
    if (
      state && state.cp === cp.superblock.cp &&
      state.volumeDigest === cp.superblock.volumeDigest.toHex()
    ) {
      this.#destCp = state.cp;
      return;
    }
    throw new RefsyncError("unavailable", `CP ${cp.superblock.cp} sync failed: ${lastMessage}`);
  }

  /** Data blocks of a CP both sides committed: later CPs may COPY from them. */
  #indexWritten(cp: CheckpointResult): void {
    // All-zero blocks became holes: counted as ZERO blocks, sent as nothing.
    this.wire.cpBlocks.zero += cp.zeroBlocks;
    if (this.options.mode !== "refs") return;
    const w = cp.written;
    const blocks: Array<{ block: number; digest: Uint8Array }> = [];
    for (let r = 0; r < w.count; r++) {
      if (w.kind(r) === "data") blocks.push({ block: w.block(r), digest: w.digest(r) });
    }
    this.locator.addVolumeBlocks(blocks);
  }

  /**
   * A reference for a block of `cp` whose bytes the destination already holds
   * elsewhere, checked against the bytes here first (the index is only a hint).
   */
  #locate(cp: CheckpointResult, digest: Uint8Array, block: number): CpRecord | null {
    const where = this.locator.find(digest);
    if (where === null) return null;
    const store = this.#store!;
    if (where.kind === "volume") {
      // Live at the destination: live in the previous CP here, not written by this one.
      if (cp.written.rowOf(where.block) >= 0 || !store.volume.isLive(where.block)) return null;
      if (!contentMatches(store.volume.readBlock(where.block), digest)) return null;
      return { kind: "copy", block, from: where.block, check: blockCheck(digest) };
    }
    // The destination drops log its committed CP covers.
    return this.#logRef(where, digest, block, store.volume.previousSuperblock?.lsnCovered ?? 0);
  }

  /**
   * A LOG_REF for `block` to a record above `dropped` that the destination
   * acknowledged (so its log holds it), checked against the bytes here; else null.
   */
  #logRef(
    where: { lsn: number; payloadOffset: number },
    digest: Uint8Array,
    block: number,
    dropped: number,
  ): CpRecord | null {
    if (where.lsn <= dropped || where.lsn > this.#forwarder!.ackedLsn) return null;
    const bytes = this.#store!.log.readRecordPayload(where.lsn, where.payloadOffset, BLOCK_SIZE);
    if (bytes === null || !contentMatches(bytes, digest)) return null;
    const { lsn, payloadOffset } = where;
    return { kind: "logRef", block, count: 1, lsn, payloadOffset, check: runCheck(digest) };
  }

  /**
   * What a catch-up to our committed CP from the destination's CP `baseCp`
   * sends: the walk by birth CP of our committed tree. `resume`: the
   * destination records this very catch-up; otherwise blocks of the target of
   * the one it records (if any) go as CHECK.
   */
  #planCatchUp(state: DestState, baseCp: number, resume: boolean): PlannedCatchUp {
    const volume = this.#store!.volume;
    const target = volume.superblock;
    return {
      kind: baseCp === 0 ? "baseline" : "resync",
      target,
      targetBytes: encodeSuperblock(target),
      baseCp,
      baseDigest: Uint8Array.fromHex(state.volumeDigest),
      walk: walkBornAfter(volume, target.catalogRoot, baseCp),
      checkThrough: !resume && state.catchUp ? state.catchUp.targetCp : 0,
      resumed: resume,
    };
  }

  /** Runs the catch-up in the background (log forwarding goes on beside it). */
  #startCatchUp(plan: PlannedCatchUp, state: DestState): void {
    const total = plan.walk.length * BLOCK_SIZE;
    const done = plan.resumed ? (state.catchUp?.bytesDone ?? 0) : 0;
    this.#catchUp = { kind: plan.kind, baseCp: plan.baseCp, targetCp: plan.target.cp, done, total };
    this.#log.info(plan.resumed ? "mirror.catch_up_resumed" : "mirror.catch_up_started", {
      kind: plan.kind,
      baseCp: plan.baseCp,
      targetCp: plan.target.cp,
      totalBytes: total,
      doneBytes: done,
    });
    const run = this.#runCatchUp(plan).catch((e) => {
      this.#log.error("mirror.catch_up_failed", {
        kind: plan.kind,
        targetCp: plan.target.cp,
        cause: errorMessage(e),
      });
    }).finally(() => {
      if (this.#catchUpRun !== run) return;
      this.#catchUpRun = null;
      this.#catchUpPlan = null;
    });
    this.#catchUpRun = run;
    this.#catchUpPlan = plan;
  }

  /**
   * Sends the catch-up until the destination committed its target: after a
   * lost link or a need for DATA it asks the destination how far it got and
   * continues from there. A damaged block here stops it (never sent).
   */
  async #runCatchUp(plan: PlannedCatchUp): Promise<void> {
    const started = this.#clock.monotonic();
    const counter = plan.kind === "baseline" ? "baselineBytes" : "resyncBytes";
    const sentBefore = this.wire[counter];
    const targetDigest = plan.target.volumeDigest.toHex();
    const forceData = new Set<number>();
    const progress = this.#catchUp!;
    for (let attempt = 0; !this.#closing; attempt++) {
      if (attempt > 0) await sleep(this.#clock, Math.min(5000, 250 * attempt));
      if (this.#closing) return;
      const state = await this.#state().catch(() => null);
      if (state === null) continue;
      if (state.cp === plan.target.cp && state.volumeDigest === targetDigest) break;
      const c = state.catchUp;
      if (c === null || c.targetCp !== plan.target.cp || c.targetDigest !== targetDigest) {
        // The destination was replaced or started another catch-up: the next handshake decides.
        throw new RefsyncError("conflict", "the destination no longer records this catch-up");
      }
      progress.done = c.bytesDone;
      const parts = catchUpParts(
        {
          volume: this.#store!.volume,
          mode: this.options.mode,
          forceData,
          locate: (digest, block) => this.#locateInLog(digest, block),
          target: plan.target,
          targetBytes: plan.targetBytes,
          baseCp: plan.baseCp,
          baseDigest: plan.baseDigest,
          walk: plan.walk,
          resumeFrom: c.blocksDone,
          checkThrough: plan.checkThrough,
        },
        this.wire,
        (n) => progress.done += n * BLOCK_SIZE,
      );
      const res = await this.#sendParts(
        plan.target.cp,
        parts,
        (cp, part, last, bytes) => this.#client.sendCatchUpPart(cp, part, last, bytes),
      );
      if (res instanceof Error) continue;
      if (res.status === 200) break;
      if (res.status === 409 && res.need) {
        for (const b of res.need) forceData.add(b);
        attempt = 0; // progress, not a failure: go again at once
        continue;
      }
      this.#log.warn("mirror.catch_up_refused", { status: res.status, message: res.message });
    }
    if (this.#closing) return;
    this.#destCp = plan.target.cp;
    this.#store!.mirrorCaughtUp(plan.target.cp);
    this.#catchUp = null;
    this.#log.info("mirror.catch_up_committed", {
      kind: plan.kind,
      baseCp: plan.baseCp,
      targetCp: plan.target.cp,
      bytes: this.wire[counter] - sentBefore,
      imageBytes: plan.walk.length * BLOCK_SIZE,
      durationMs: Math.round(this.#clock.monotonic() - started),
    });
  }

  /** A catch-up's reference: only to the log it forwarded since the destination's log reset. */
  #locateInLog(digest: Uint8Array, block: number): CpRecord | null {
    const where = this.locator.find(digest);
    if (where === null || where.kind !== "log") return null;
    return this.#logRef(where, digest, block, this.#store!.log.firstLsn - 1);
  }

  /**
   * Sends the parts of one CP sync (or catch-up) in order; every part but the
   * last is answered 202. Resolves with the answer to the last part (or the
   * first refusal), or the transport error.
   */
  async #sendParts(
    cp: number,
    parts: Generator<Uint8Array<ArrayBuffer>>,
    send: (cp: number, part: number, last: boolean, bytes: Uint8Array) => Promise<CpPartAnswer> = (
      ...a
    ) => this.#client.sendCpPart(...a),
  ): Promise<CpPartAnswer | Error> {
    let part = parts.next();
    for (let index = 0; !part.done; index++) {
      const next = parts.next();
      const last = next.done === true;
      const res = await send(cp, index, last, part.value)
        .catch((e) => e as Error);
      if (res instanceof Error || last || res.status !== 202) return res;
      part = next;
    }
    return new Error("invariant: a CP sync has at least one part");
  }
}

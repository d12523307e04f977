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
 * Outage policy (`--sync-policy`): strict writes wait for the destination
 * (503 after --sync-timeout); available ones are acknowledged locally once it
 * has not confirmed within --sync-timeout (the forwarder goes out of sync),
 * CPs then commit locally and their syncs are deferred (what they replaced is
 * kept until the destination caught up: `ObjectStore.mirrorCaughtUp`).
 *
 * State (`mirror.state`, `MIRROR_STATES` of src/protocol/mirror-state): computed from the link, the
 * log, the destination's CP and a catch-up; each change is one
 * `mirror.state {from, to, cause}` line.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { errorMessage, RefsyncError } from "../../errors/mod.ts";
import { type Logger, rootLogger } from "../../logging/mod.ts";
import { newWireStats, type WireStats } from "../../protocol/cp-sync/stats.ts";
import {
  type DestState,
  divergentTailAfter,
  judgePairing,
  type LocalCp,
} from "../../protocol/handshake/mod.ts";
import type { MirrorState, SyncPolicy } from "../../protocol/mirror-state/mod.ts";
import type { Appended } from "../../storage/log/mod.ts";
import type { CheckpointResult, ObjectStore, SyncOutcome } from "../../storage/objects/store.ts";
import { blockCheck, type CpRecord, runCheck } from "../../protocol/cp-sync/records.ts";
import { BlockLocator, contentMatches } from "./block-locator.ts";
import { FrameDeduper } from "./frame-deduper.ts";
import { type CpSyncMode, cpSyncParts } from "./cp-sync-sender.ts";
import { catchUpParts } from "./catch-up-sender.ts";
import { type BirthWalk, walkBornAfter } from "../../storage/objects/catch-up-walk.ts";
import { encodeSuperblock, type Superblock } from "../../storage/volume/superblock.ts";
import { sleep } from "../../runtime/clock.ts";
import { FencedError, type LinkChange, type LinkState, LogForwarder } from "./log-forwarder.ts";
import { HttpReplicaClient } from "./http-client.ts";
import type { CatchUpKind, CpPartAnswer, ReplicaClient } from "./replica-client.ts";
import { type Clock, systemClock, type TimerId } from "../../runtime/clock.ts";
import type { Random } from "../../runtime/random.ts";

/** A catch-up's progress (`mirror.progress`): bytes of the blocks its walk sends. */
export interface CatchUpProgress {
  kind: CatchUpKind;
  baseCp: number;
  targetCp: number;
  done: number;
  total: number;
}

/** What the destination has not acknowledged (`mirror.lag`). */
export interface MirrorLag {
  records: number;
  bytes: number;
  /** Age of the oldest of them, seconds (0 when none). */
  seconds: number;
  /** False until a handshake told what the destination holds: all zero then. */
  known: boolean;
}

/**
 * How long one request to the destination may take before it counts as
 * unreachable (a silent partition must not hang the forwarder): twice
 * --sync-timeout, more for a large body (at 1 MiB/s).
 *
 * @example
 * ```ts
 * replicaTimeoutMs(5000)(0); // 10000
 * replicaTimeoutMs(5000)(32 << 20); // 32000
 * ```
 */
export function replicaTimeoutMs(syncTimeoutMs: number): (bodyBytes: number) => number {
  return (bytes) => Math.max(2 * syncTimeoutMs, Math.ceil(bytes / (1 << 20) * 1000));
}

/** A catch-up decided at a handshake. */
interface PlannedCatchUp {
  kind: CatchUpKind;
  target: Superblock;
  targetBytes: Uint8Array;
  baseCp: number;
  baseDigest: Uint8Array;
  walk: BirthWalk;
  checkThrough: number;
  resumed: boolean;
}

/**
 * How often the mirror asks the destination what it holds: one replaced (or
 * restored from an older copy) while the pair is idle is otherwise not heard
 * of until the next write or CP, and reported in sync meanwhile.
 */
export const LOOK_MS = 5000;

/**
 * Log batches in flight at once on the log stream: the source encodes and
 * sends the next while the destination checks and syncs the one before.
 */
export const PIPELINE_DEPTH = 2;

/** How long a resync waits for the log catch-up before it starts: 200 x 50 ms. */
const LOG_FIRST_POLLS = 200;
const LOG_FIRST_POLL_MS = 50;

/** Configuration of the mirror. */
export interface MirrorOptions {
  /** Base URL of the destination appliance. */
  url: string;
  token: string;
  syncTimeoutMs: number;
  /** `--sync-policy`: what a write does when the destination does not confirm it (default strict). */
  policy?: SyncPolicy;
  mode: CpSyncMode;
  /** Where a fenced source sets its unacknowledged log tail aside (`DATA/quarantine`). */
  quarantineDir: string;
  logger?: Logger;
  /** `--dest-log-port`: the log stream's port, "off", or null (default) the announced one. */
  destLogPort?: number | "off" | null;
  /**
   * How requests reach the destination, given the counters of the bytes it
   * sends. Default HTTP to `url` with `token`.
   */
  client?: (wire: WireStats) => ReplicaClient;
  /** Picks the link epochs' ids (the simulator's). Default the OS CSPRNG. */
  random?: Random;
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
  /** The reference frame format the destination reads (its handshake's `refFormat`). */
  #destRefFormat = 1;
  /** The CP being synced, while the destination holds the one before. */
  #syncing: CheckpointResult | null = null;
  #handshakes = 0;
  #downSince = 0;
  /** Set when fencing starts: CP hooks give up at once (the set-aside waits for the CP). */
  #fencing: RefsyncError | null = null;
  #fencingStarted: { promise: Promise<never>; reject: (e: RefsyncError) => void };
  /** What the fencing set aside. */
  #quarantine: { file: string | null; firstLsn: number; lastLsn: number } | null = null;
  /** The catch-up running in the background, and what it sends; CP syncs wait for it. */
  #catchUpRun: Promise<void> | null = null;
  #catchUpPlan: PlannedCatchUp | null = null;
  #closing = false;
  #lookTimer: TimerId | undefined = undefined;
  #looking: Promise<void> | null = null;
  readonly locator: BlockLocator = new BlockLocator();
  /** The catch-up running or pending (set by the catch-up through {@link #setCatchUp}), or null. */
  #catchUp: CatchUpProgress | null = null;
  /** The state last reported (its changes are logged). */
  #reported: { state: MirrorState; cause: string } = { state: "out-of-sync", cause: "starting" };

  constructor(options: MirrorOptions) {
    this.options = options;
    this.#client = options.client?.(this.wire) ??
      new HttpReplicaClient({
        url: options.url,
        token: options.token,
        wire: this.wire,
        random: options.random,
        timeoutMs: replicaTimeoutMs(options.syncTimeoutMs),
        logStream: options.destLogPort,
        logger: options.logger,
      });
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? rootLogger()).child({ destination: options.url });
    let reject!: (e: RefsyncError) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    promise.catch(() => {}); // only ever raced against
    this.#fencingStarted = { promise, reject };
  }

  /** How this mirror reaches its destination (the verify shares it). */
  get client(): ReplicaClient {
    return this.#client;
  }

  /** The store hooks: pass them to ObjectStore.open. */
  get hooks(): {
    replicate: (written: Appended[]) => Promise<boolean>;
    syncCheckpoint: (cp: CheckpointResult) => Promise<SyncOutcome>;
    ready: () => Promise<void>;
    mirrorHolds: (lsn: number) => Promise<void>;
    mirrorAckedLsn: () => number;
  } {
    return {
      replicate: async (written) => {
        if (this.options.mode === "refs") this.locator.addLogRecords(written, this.#droppedLsn());
        const held = await this.#forwarder!.forward(written);
        // Held, but RPO 0 only when the destination could take over: in sync.
        return held && this.state === "in-sync";
      },
      syncCheckpoint: (cp) => this.#syncCheckpoint(cp),
      ready: () => this.#untilFenced(() => this.#ready()),
      mirrorHolds: (lsn) =>
        this.#untilFenced(async () => {
          // Available and out of sync: resolves at once (the CP's sync is deferred).
          await this.#forwarder!.waitAcked(lsn, this.options.syncTimeoutMs);
        }),
      mirrorAckedLsn: () => this.#forwarder!.ackedLsn,
    };
  }

  /** CPs wait for the first handshake: it decides whether our last CP must be sent again. */
  async #ready(): Promise<void> {
    if (this.#handshakes === 0) await this.#forwarder!.admit(this.options.syncTimeoutMs);
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
   * within --sync-timeout), or (available policy) the mirror is out of sync.
   * Rejects, before anything is logged, with `fenced` (403) once the
   * destination was promoted, and (strict policy) with `unavailable` (503) at
   * once while the destination refuses this source, or after --sync-timeout
   * while it is unreachable.
   */
  admitWrite(): Promise<void> {
    if (this.#fencing) return Promise.reject(this.#fencing);
    return this.#forwarder!.admit(this.options.syncTimeoutMs);
  }

  /** Starts forwarding for `store` (opened with {@link Mirror.hooks}). */
  attach(store: ObjectStore): void {
    this.#store = store;
    // refs mode: records the destination holds are forwarded as references.
    const deduper = this.options.mode === "refs"
      ? new FrameDeduper(this.locator, store.log, store.volume, {
        ackedLsn: () => this.#forwarder!.ackedLsn,
        droppedLsn: () => this.#droppedLsn(),
        holdsBlock: (block) => this.#destHoldsBlock(block),
        refFormat: () => this.#destRefFormat,
      }, this.wire)
      : null;
    const sendFrames = (bytes: Uint8Array, repeats = false) =>
      this.#client.sendFrames(bytes, { repeats });
    this.#forwarder = new LogForwarder(store.log, {
      connect: () => this.#handshake(),
      send: (frames, records) =>
        deduper && records ? deduper.send(records, sendFrames) : sendFrames(frames()),
      window: () => this.#client.pipelined ? PIPELINE_DEPTH : 1,
    }, {
      syncTimeoutMs: this.options.syncTimeoutMs,
      policy: this.options.policy,
      clock: this.#clock,
      wire: this.wire,
      onLink: (change) => {
        this.#logLink(change);
        this.#refreshState();
      },
      onChange: () => this.#refreshState(),
    });
    this.#forwarder.start();
    this.#scheduleLook();
  }

  /**
   * The highest LSN the destination may have dropped from its log: what its
   * committed CP covers (all of it while we do not know which CP it holds).
   */
  #droppedLsn(): number {
    const store = this.#store!;
    const sb = store.superblock;
    if (this.#destCp === sb.cp) return sb.lsnCovered;
    const prev = store.volume.previousSuperblock;
    return prev && prev.cp === this.#destCp ? prev.lsnCovered : Infinity;
  }

  /**
   * True when `block` is live in the destination's committed CP with the
   * bytes it has here: it is our committed CP, or the one before while ours
   * is being synced (its blocks stay allocated here until the destination
   * commits ours) and ours did not write the block.
   */
  #destHoldsBlock(block: number): boolean {
    const store = this.#store!;
    if (block === 0 || !store.volume.isLive(block)) return false;
    const cp = store.superblock.cp;
    if (this.#destCp === cp) return true;
    // A catch-up rewrites blocks there: none is named while one runs.
    const syncing = this.#syncing;
    return syncing !== null && syncing.superblock.cp === cp && this.#destCp === cp - 1 &&
      this.#catchUpRun === null && syncing.written.rowOf(block) < 0;
  }

  /** The pair's state (`mirror.state`); a change is logged once. */
  get state(): MirrorState {
    return this.#refreshState().state;
  }

  /** Where the link to the destination stands (`mirror.link`). */
  get link(): LinkState {
    return this.#forwarder?.link ?? "connecting";
  }

  /**
   * What the destination has not acknowledged: records, log bytes, and the
   * age (s) of the oldest of them (its frame's mtime). `known` is false
   * until a handshake told what it holds (all zero then).
   */
  get lag(): MirrorLag {
    const f = this.#forwarder;
    const log = this.#store?.log;
    // The HTTP server, the only caller, stops before the store closes.
    if (!f?.ackKnown || !log) return { records: 0, bytes: 0, seconds: 0, known: false };
    const acked = Math.max(f.ackedLsn, log.firstLsn - 1);
    const records = Math.max(0, log.lastLsn - acked);
    if (records === 0) return { records: 0, bytes: 0, seconds: 0, known: true };
    // Only the oldest record's header is read.
    const oldestRecords = log.records(acked + 1);
    const oldest = oldestRecords.next();
    oldestRecords.return(undefined);
    const mtime = oldest.done ? this.#clock.now() : oldest.value.header.mtime;
    const seconds = Math.max(0, (this.#clock.now() - mtime) / 1000);
    return { records, bytes: log.bytesAfter(acked), seconds, known: true };
  }

  /** Mirror state for `/v1/admin/stats`. */
  stats(): Record<string, unknown> {
    const f = this.#forwarder;
    const { state, cause } = this.#refreshState();
    return {
      mirror: {
        destination: this.options.url,
        mode: this.options.mode,
        policy: this.options.policy ?? "strict",
        state,
        link: this.link,
        connected: f?.connected ?? false,
        ackedLsn: f?.ackedLsn ?? 0,
        destinationCp: this.#destCp,
        lag: this.lag,
        lastError: state === "in-sync" ? null : f?.lastError ?? cause,
        progress: this.#catchUp && { ...this.#catchUp },
        quarantine: this.#quarantine,
      },
    };
  }

  /**
   * The catch-up running or pending (null: none): the state becomes
   * `initializing` (a baseline) or `resyncing` until it is null again.
   */
  #setCatchUp(progress: CatchUpProgress | null): void {
    this.#catchUp = progress;
    this.#refreshState();
  }

  /** Recomputes the state; logs `mirror.state` when it changed. */
  #refreshState(): { state: MirrorState; cause: string } {
    const next = this.#computeState();
    const from = this.#reported.state;
    this.#reported = next;
    if (next.state !== from) {
      const fields = { from, to: next.state, cause: next.cause };
      if (next.state === "in-sync") this.#log.info("mirror.state", fields);
      else if (next.state === "fenced") this.#log.error("mirror.state", fields);
      else this.#log.warn("mirror.state", fields);
    }
    return next;
  }

  #computeState(): { state: MirrorState; cause: string } {
    const f = this.#forwarder;
    if (this.#fencing) return { state: "fenced", cause: this.#fencing.message };
    if (!f) return this.#reported;
    if (f.link === "fenced") return { state: "fenced", cause: f.lastError ?? "fenced" };
    const c = this.#catchUp;
    if (c) {
      const what = c.kind === "baseline" ? "baseline" : `resync from CP ${c.baseCp}`;
      return {
        state: c.kind === "baseline" ? "initializing" : "resyncing",
        cause: `${what} to CP ${c.targetCp}: ${c.done} of ${c.total} bytes`,
      };
    }
    const outOfSync = (cause: string) => ({ state: "out-of-sync" as const, cause });
    if (f.link !== "connected") return outOfSync(f.lastError ?? `the link is ${f.link}`);
    if (f.outOfSync !== null) return outOfSync(f.outOfSync);
    if (f.ackedLsn < f.behindLsn) {
      return outOfSync(
        `the destination holds the log to LSN ${f.ackedLsn}, writes were answered to LSN ${f.behindLsn}`,
      );
    }
    const cp = this.#store!.superblock.cp;
    if (this.#destCp < cp - 1) {
      return outOfSync(`the destination is at CP ${this.#destCp}, this source at CP ${cp}`);
    }
    return {
      state: "in-sync",
      cause: `the destination holds the log to LSN ${f.ackedLsn} and CP ${this.#destCp}`,
    };
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#clock.clearTimeout(this.#lookTimer);
    await this.#forwarder?.stop();
    await this.#looking;
    await this.#catchUpRun;
    this.#client.close?.();
  }

  #scheduleLook(): void {
    if (this.#closing) return;
    this.#lookTimer = this.#clock.setTimeout(() => {
      this.#looking = this.#look().finally(() => {
        this.#looking = null;
        this.#scheduleLook();
      });
    }, LOOK_MS);
  }

  /**
   * Asks the destination what it holds; when that is less than it said (the
   * log it acknowledged, the CP it committed), a handshake judges it again.
   */
  async #look(): Promise<void> {
    const f = this.#forwarder!;
    if (f.link !== "connected" || this.#catchUpRun || this.#syncing) return;
    const acked = f.ackedLsn;
    const cp = this.#destCp;
    const handshakes = this.#handshakes;
    // A look, not a handshake: the link's compression epoch and log stream go on under it.
    const client = this.#client;
    const state = await (client.look ? client.look() : client.state()).catch(() => null);
    // Judged against what it said before the question; a handshake meanwhile judged it already.
    if (state === null || this.#closing || handshakes !== this.#handshakes) return;
    if (f.link !== "connected" || (state.lastLsn >= acked && state.cp >= cp)) return;
    f.renew(
      `the destination holds CP ${state.cp} and the log to LSN ${state.lastLsn}; it held CP ${cp} and LSN ${acked}`,
    );
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
    let state = await this.#state();
    // Our CP read after the answer: a CP committed while it was on its way (whose deferral found
    // the link down, so renewed nothing) is judged too, and resent when the destination lacks it.
    const sb = store.superblock;
    const prev = store.volume.previousSuperblock;
    const local: LocalCp = {
      volumeId: sb.volumeId.toHex(),
      pairGeneration: sb.pairGeneration,
      cp: sb.cp,
      volumeDigest: sb.volumeDigest.toHex(),
      previousDigest: prev && prev.cp === sb.cp - 1 ? prev.volumeDigest.toHex() : null,
      promotedAtLsn: sb.promotedAtLsn,
      promotedFromCp: sb.promotedFromCp,
      promotedFromDigest: sb.promotedFromDigest.toHex(),
    };
    const verdict = judgePairing(state, local);
    if (verdict.kind === "fenced") throw await this.#fence(verdict.reason, verdict.keepLsn);
    if (verdict.kind === "refused") throw new RefsyncError("conflict", verdict.reason);
    let catchUp: PlannedCatchUp | null = null;
    const tailAfter = verdict.kind === "catchUp" ? divergentTailAfter(state, local) : null;
    if (tailAfter !== null) {
      // A failback, before any log goes there: its tail above our promotion's LSN never
      // reached us (never acknowledged, or acknowledged out of sync and lost by the failover).
      state = await this.#client.resetLog({ quarantineAfter: tailAfter, ifLastLsn: state.lastLsn });
      this.#log.warn("mirror.rejoin_set_aside", { afterLsn: tailAfter });
    }
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
        // A rejoining destination may have gone back to its previous CP, the base.
        catchUp.baseDigest = Uint8Array.fromHex(state.volumeDigest);
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
    this.#destRefFormat = state.refFormat ?? 1;
    // What CPs through the destination's replaced (kept while their syncs were deferred) may go.
    store.mirrorCaughtUp(state.cp);
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
   * then let the forwarder answer the writers waiting on that tail (403);
   * a writer waiting on a record it did receive (its answer lost in the
   * failover) has its write in the promoted history, and is answered so.
   * Resolves with the error the forwarder ends with.
   */
  async #fence(reason: string, keepLsn: number): Promise<RefsyncError> {
    // The promoted side holds our log up to `keepLsn`: the forwarder answers its writers so.
    const error = new FencedError(reason, keepLsn);
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

  async #syncCheckpoint(cp: CheckpointResult): Promise<SyncOutcome> {
    if (this.#fencing) throw this.#fencing;
    const f = this.#forwarder!;
    if (this.options.policy === "available") {
      // Out of sync its references may name log the destination lacks, and one that is more than
      // a CP behind cannot apply it: the CP stays local until the destination caught up.
      // A catch-up running is no outage: the CP waits for it below, as under strict.
      const behind = this.#catchUpRun === null && this.#destCp < cp.superblock.cp - 1;
      const why = f.outOfSync ?? (behind ? `the destination is at CP ${this.#destCp}` : null);
      if (why !== null) return this.#defer(cp, why);
    }
    this.#syncing = cp;
    try {
      return await this.#sendCheckpoint(cp);
    } catch (e) {
      // Available: a destination that fails the sync is out of sync; anything else is no outage.
      if (this.options.policy !== "available" || this.#fencing || !(e instanceof RefsyncError)) {
        throw e;
      }
      f.goOutOfSync(e.message);
      return this.#defer(cp, e.message);
    } finally {
      this.#syncing = null; // its written blocks are kept no longer than the sync
    }
  }

  /**
   * Available policy: CP `cp` commits here only. The destination lacks it, so
   * a handshake is due even when the link stayed up (a slow destination): it
   * resends the CP to a destination one CP behind (`resendLastCp`), and
   * resyncs one further behind (a resend it owed may have been replaced by a
   * CP committed meanwhile: the store owes one sync at a time).
   */
  #defer(cp: CheckpointResult, why: string): SyncOutcome {
    this.#log.debug("mirror.cp_deferred", { cp: cp.superblock.cp, cause: why });
    if (this.#destCp < cp.superblock.cp) {
      this.#forwarder!.renew(`CP ${cp.superblock.cp} deferred: ${why}`);
    }
    this.#refreshState();
    return "deferred";
  }

  async #sendCheckpoint(cp: CheckpointResult): Promise<SyncOutcome> {
    // A CP committed during a catch-up waits for it: then it is a CP sync over its target.
    await this.#catchUpRun;
    if (this.#destCp >= cp.superblock.cp) return "synced";
    // The references resolve against the destination's log: mirrorHolds saw it hold them.
    const forceData = new Set<number>();
    let lastMessage = "";
    let resent = false;
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
        this.#refreshState();
        return "synced";
      }
      lastMessage = res.message ?? `status ${res.status}`;
      if (res.status === 409 && res.need) {
        for (const b of res.need) forceData.add(b);
        continue;
      }
      // A refused stream (malformed, or its content digest differs at COMMIT) may have been
      // damaged on the link: the destination committed nothing, so it is sent once more.
      if (res.status >= 400 && res.status < 500 && !resent) {
        resent = true;
        this.#log.warn("mirror.cp_resent", { cp: cp.superblock.cp, cause: lastMessage });
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
      this.#refreshState();
      return "synced";
    }
    if (state && !this.#syncApplies(state, cp)) {
      // Not where the last handshake found it (its disk replaced, restored from an older copy)
      // and no CP sync can reach it: a handshake decides what can (a baseline, a resync). An
      // idle pair sends no log whose refusal would start one.
      this.#destCp = state.cp;
      this.#forwarder!.renew(
        `the destination is at CP ${state.cp}; the sync of CP ${cp.superblock.cp} needs CP ${
          cp.superblock.cp - 1
        }`,
      );
      this.#refreshState();
    }
    throw new RefsyncError("unavailable", `CP ${cp.superblock.cp} sync failed: ${lastMessage}`);
  }

  /** The destination in `state` can take the CP sync of `cp`: it holds the CP before, as we do. */
  #syncApplies(state: DestState, cp: CheckpointResult): boolean {
    return state.catchUp === null && state.cp === cp.superblock.cp - 1 &&
      state.volumeDigest === cp.previousDigest.toHex();
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
    this.#setCatchUp({
      kind: plan.kind,
      baseCp: plan.baseCp,
      targetCp: plan.target.cp,
      done,
      total,
    });
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
      // The source moved on meanwhile (the available policy commits CPs locally, deferred): the
      // next handshake resyncs from the target, or resends our CP when that is the only one
      // missing. A CP sync still owed (waiting for this catch-up) follows by itself.
      const store = this.#store!;
      const cp = store.superblock.cp;
      const owed = this.#destCp === cp - 1 && store.needsSync;
      if (this.#closing) return;
      if (this.#destCp < cp && !owed) {
        this.#forwarder?.renew(`the destination is at CP ${this.#destCp}, this source at CP ${cp}`);
      } else if (this.#forwarder?.outOfSync) {
        // Out of sync is cleared by an acknowledgement; an idle pair sends none: a handshake tells.
        this.#forwarder.renew("the catch-up ended with the mirror out of sync");
      }
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
    if (plan.kind === "resync") await this.#logFirst(plan.target.lsnCovered);
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
        (n) => progress.done += n * BLOCK_SIZE,
      );
      const res = await this.#sendParts(
        plan.target.cp,
        parts,
        (cp, part, last, bytes) => this.#client.sendCatchUpPart(cp, part, last, bytes, plan.kind),
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
    this.#setCatchUp(null);
    this.#log.info("mirror.catch_up_committed", {
      kind: plan.kind,
      baseCp: plan.baseCp,
      targetCp: plan.target.cp,
      bytes: this.wire[counter] - sentBefore,
      imageBytes: plan.walk.length * BLOCK_SIZE,
      durationMs: Math.round(this.#clock.monotonic() - started),
    });
  }

  /**
   * A resync waits (a while) for the log the destination lacks, which the
   * forwarder sends from our log: its blocks born from those records then go
   * as references to them, not as their bytes a second time.
   */
  async #logFirst(lsn: number): Promise<void> {
    const f = this.#forwarder!;
    const target = Math.min(lsn, this.#store!.log.lastLsn);
    // Started from the handshake, before the link is up: a link that stays down ends the wait
    // at its bound, and the resync then sends what it must.
    for (let i = 0; i < LOG_FIRST_POLLS && f.ackedLsn < target && !f.fatal; i++) {
      if (this.#closing) return;
      await sleep(this.#clock, LOG_FIRST_POLL_MS);
    }
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

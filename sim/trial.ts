/**
 * One seeded trial of a simulated pair: a client workload (PUTs, ranged
 * writes, DELETEs, reads, CPs), faults (crashes of either side at any
 * moment, partitions, a lossy network, a promotion), and the checks after
 * every step and at the end.
 *
 * The trial runs on microtasks and simulated time only: after each event the
 * microtask queue is drained (one `setImmediate`), then the clock moves to
 * the next timer. Nothing real (timers, I/O, randomness) is on the path, so a
 * seed replays the same interleaving, byte for byte.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { equalBytes } from "../src/bytes/mod.ts";
import { etagOf } from "../src/storage/objects/etag.ts";
import type { LinkPlan } from "../src/edge-source/mirror/memory-client.ts";
import { LOOK_MS } from "../src/edge-source/mirror/mirror.ts";
import type { CpPartAnswer } from "../src/edge-source/mirror/replica-client.ts";
import { readRecords } from "../src/protocol/cp-sync/records.ts";
import { isError } from "../src/errors/mod.ts";
import { Prng } from "../src/runtime/random.ts";
import type { CrashFaults } from "../src/storage/fs/memory.ts";
import { SimClock } from "./clock.ts";
import { Moves, Repeats } from "./content.ts";
import { type ForwardCounts, Forwarding } from "./forwarding.ts";
import { objectBytes, type ObjectState, type Outcome, PairModel, writeRange } from "./model.ts";
import { type Handler, Machine, type Simulation, TOKEN } from "./pair.ts";
import type { SyncPolicy } from "../src/protocol/mirror-state/mod.ts";
import type { CatchUpBegin } from "../src/protocol/handshake/mod.ts";
import {
  committedBlocks,
  type Damage,
  falseReference,
  flip,
  flipAgain,
  imageDifference,
  payloadSpans,
  repair,
  stillDamaged,
  type TreeBlock,
} from "./refs.ts";

/** How a trial ended: null when every check held. */
export interface TrialFailure {
  step: number;
  what: string;
}

/** What a trial did (printed with --verbose; equal for equal seeds). */
export interface TrialSummary {
  failure: TrialFailure | null;
  /** Client writes acknowledged, refused, and left in doubt. */
  writes: Record<Outcome, number>;
  reads: number;
  crashes: number;
  /** Bits flipped at rest on the destination, and the blocks it asked for as DATA. */
  flips: number;
  refused: number;
  promoted: boolean;
  /** The source's `--sync-policy`. */
  policy: SyncPolicy;
  /** How the pair's life began: paired empty, or a source with data and no destination yet. */
  start: "paired" | "baseline";
  /** Times the destination's disk was replaced by an empty one. */
  replaced: number;
  /** Promotions refused (409) because the destination held no complete image. */
  promoteRefused: number;
  /** Destination reads answered 503 while a catch-up was recorded there. */
  initializingReads: number;
  /** Writes acknowledged out of sync (`Refsync-Mirror: out-of-sync`, available policy). */
  outOfSync: number;
  /** Catch-ups the destination recorded, by kind. */
  catchUps: { baseline: number; resync: number };
  /** The writer's committed CP and volume digest at the end. */
  cp: number;
  digest: string;
  /** Simulated milliseconds the trial took. */
  simulatedMs: number;
  /** What the forwarding path sent as references. */
  forwarded: ForwardCounts;
}

/** Knobs of a trial. */
export interface TrialOptions {
  /** Client steps (default 60). */
  steps?: number;
  /**
   * Whether the trial writes text and moved copies (`sim/content.ts` Moves);
   * default: its own stream's draw (30% of the trials). False replays a trial
   * found before moved content existed as it was found.
   */
  moves?: boolean;
  /**
   * Whether log batches go on a log stream (in order, two in flight; else
   * one HTTP request at a time); default: its own stream's draw (70% of the
   * trials). False replays a trial found before the stream was simulated as
   * it was found.
   */
  stream?: boolean;
}

/** Keys of the workload: few, so that writes overwrite and race with CPs. */
const KEYS = ["a", "b", "c/d", "é", "k1", "k2"];

class Failed extends Error {}

const PEER: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 2 },
  completed: Promise.resolve(),
};

/** The `error` code of a JSON error body, or null. */
function errorOf(body: Uint8Array): string | null {
  try {
    return JSON.parse(new TextDecoder().decode(body)).error ?? null;
  } catch {
    return null;
  }
}

/** Drains the microtask queue: everything runnable runs before the next macrotask. */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A client request in flight. */
interface Pending {
  key: string | null;
  machine: Machine;
  incarnation: number;
  /** Called once with the answer, or with null when its machine crashed first. */
  settle: (res: { status: number; body: Uint8Array; headers: Headers } | null) => void;
}

/** Runs trial `index` of `seed`. */
export async function runTrial(
  seed: number,
  index: number,
  options: TrialOptions = {},
): Promise<TrialSummary> {
  const trial = new Trial(seed, index, options);
  const failure = await trial.run();
  const store = trial.writer.process?.handle.store;
  return {
    failure,
    writes: trial.writes,
    reads: trial.reads,
    crashes: trial.crashes,
    flips: trial.flips,
    refused: trial.refused,
    promoted: trial.promoted,
    policy: trial.policy,
    start: trial.start,
    replaced: trial.replaced,
    promoteRefused: trial.promoteRefused,
    initializingReads: trial.initializingReads,
    outOfSync: trial.outOfSync,
    catchUps: trial.catchUps,
    cp: store?.superblock.cp ?? -1,
    digest: store?.digest().digest ?? "",
    simulatedMs: trial.clock.elapsed,
    forwarded: trial.forwarding.counts,
  };
}

class Trial implements Simulation {
  readonly clock = new SimClock();
  readonly rng: Prng;
  /** The workload's choices, apart from the faults' (so both stay replayable). */
  readonly work: Prng;
  /** Where bits flip at rest: a stream of its own, so the other faults keep theirs. */
  readonly rot: Prng;
  /** What the writer holds: every acknowledged write happened. */
  readonly model = new PairModel();
  /**
   * What the destination holds for a failover: as {@link model}, but a
   * write the source acknowledged out of sync (`Refsync-Mirror: out-of-sync`,
   * the available policy's RPO > 0) may be missing there.
   */
  readonly failoverModel = new PairModel();
  /**
   * As {@link failoverModel}, but the writes the source acknowledged before
   * it had a destination (a baseline's start) may be missing too: what a
   * destination promoted before it received all of that log holds (no
   * mirror held them when they were acknowledged, so no RPO covered them).
   */
  readonly failoverBehind = new PairModel();
  /** The source's durable LSN when a baseline's start ended: every write acknowledged alone. */
  preludeLsn = 0;
  /** The last promotion was asked of a destination holding the source's log to `preludeLsn`. */
  promotedCaughtUp = true;
  /** The source's `--sync-policy`. */
  readonly policy: SyncPolicy;
  /** How the pair's life begins (see {@link TrialSummary.start}). */
  readonly start: "paired" | "baseline";
  /** The source runs with its destination configured (false before a baseline's attach). */
  attached = true;
  /**
   * The destination's disk is new (a baseline's start, a replacement) and
   * no CP has reached it yet: blank, it knows of no source, so promoting
   * it would make an empty volume by the operator's choice, not a failover.
   */
  blankDest: boolean;
  replaced = 0;
  promoteRefused = 0;
  initializingReads = 0;
  outOfSync = 0;
  catchUps = { baseline: 0, resync: 0 };
  /** Events after which the destination recorded a catch-up (see {@link Trial.promote}). */
  catchUpTicks = 0;
  readonly steps: number;
  step = 0;
  failure: TrialFailure | null = null;
  /** Network faults on (off while the trial heals at the end). */
  calm = false;
  readonly source: Machine;
  readonly dest: Machine;
  /** Set by a promotion: the destination machine is the writer from then on. */
  promoted = false;
  /** The promotion was answered 200. */
  promoteAcked = false;
  pending = new Set<Pending>();
  /** Volume digests seen per (pair generation, CP), on both sides. */
  digests = new Map<string, string>();
  booting = new Set<Machine>();
  /** Crashes to come, each after a number of events. */
  scheduled = new Set<{ machine: Machine; events: number; restart: boolean }>();
  /** A disaster happened: promote the destination as soon as it is back. */
  failover = false;
  writes: Record<Outcome, number> = { applied: 0, maybe: 0, not: 0 };
  reads = 0;
  crashes = 0;
  flips = 0;
  refused = 0;

  /** Bits the fault model flipped at rest on the destination (see {@link Trial.damageDest}). */
  damage: Damage[] = [];
  /** The forwarding path's checks, and its forger in a share of the trials (`sim/forwarding.ts`). */
  readonly forwarding: Forwarding;

  /** Content the workload writes again (`sim/content.ts`). */
  readonly repeats: Repeats;
  /** In a share of the trials, text bodies and moved copies of them (`sim/content.ts`). */
  readonly moves: Moves | null;
  /** Log batches go on a log stream over the link (`MemoryLink.openStream`), not as requests. */
  readonly stream: boolean;
  /** With the stream: when a second writer follows a PUT a moment later (see {@link put}). */
  readonly bursts: Prng | null;

  constructor(seed: number, index: number, options: TrialOptions) {
    const root = new Prng(seed);
    for (let i = 0; i < index; i++) root.u32();
    const trialSeed = root.u32();
    this.rng = new Prng(trialSeed);
    this.rot = new Prng(trialSeed ^ 0x5bd1e995);
    this.work = this.rng.fork();
    this.repeats = new Repeats(this.work);
    // The pair's life: a stream of its own, so each trial's other choices keep theirs.
    const life = new Prng(trialSeed ^ 0x27d4eb2f);
    this.policy = life.chance(0.35) ? "available" : "strict";
    this.start = life.chance(0.25) ? "baseline" : "paired";
    this.blankDest = this.start === "baseline";
    this.forwarding = new Forwarding(
      this,
      life.chance(0.3) ? new Prng(trialSeed ^ 0x68e31da4) : null,
    );
    const moves = new Prng(trialSeed ^ 0x165667b1);
    const drawn = moves.chance(0.3);
    this.moves = (options.moves ?? drawn) ? new Moves(moves) : null;
    const stream = new Prng(trialSeed ^ 0x2545f491);
    this.stream = options.stream ?? stream.chance(0.7);
    this.bursts = this.stream ? stream : null;
    this.steps = options.steps ?? 60;
    this.source = new Machine(this, "source");
    this.dest = new Machine(this, "dest");
  }

  readonly watch = {
    line: (name: string, line: string) => {
      if (this.failure) return;
      const event = JSON.parse(line) as { level: string; event: string; cause?: string };
      this.forwarding.line(name, event.event);
      if (event.event === "http.internal_error" || /invariant/.test(line)) {
        this.fail(`${name} logged ${event.event}: ${event.cause ?? line}`);
      }
    },
  };

  readonly linkFaults = (_req: Request): LinkPlan => {
    const r = this.rng;
    if (this.calm) return { delayMs: r.int(3), responseDelayMs: r.int(3) };
    const plan: LinkPlan = { delayMs: r.int(4), responseDelayMs: r.int(4) };
    const x = r.float();
    if (x < 0.02) plan.dropRequest = true;
    else if (x < 0.04) plan.dropResponse = true;
    else if (x < 0.06) plan.duplicateAfterMs = r.int(50);
    else if (x < 0.07) plan.cutBodyAt = r.int(200);
    else if (x < 0.09) plan.delayMs += r.int(400);
    return plan;
  };

  readonly cpSync = {
    sent: async (source: Machine, bytes: Uint8Array) => {
      const store = source.process?.handle.store;
      if (!store) return;
      for await (const r of readRecords(ReadableStream.from([bytes]))) {
        const wrong = falseReference(store, r);
        if (wrong) return this.fail(`the source sent a false reference: ${wrong}`);
      }
    },
    answered: (_source: Machine, cp: number, answer: CpPartAnswer) => {
      this.refused += answer.need?.length ?? 0;
      // Every reference is checked before it is applied: one that resolved to other bytes
      // is refused (409 need), so the content digest can only differ if one slipped through.
      if (answer.status === 409 && /content digest differs/.test(answer.message ?? "")) {
        this.fail(`CP ${cp}: the destination applied bytes a reference did not name`);
      }
    },
  };

  /**
   * A catch-up begins: the destination's image is incomplete from now to its
   * commit, so the workload probes it then — a read there (503) and, now
   * and then, a promotion (409).
   */
  catchUpBegun(body: CatchUpBegin): void {
    this.catchUps[body.baseCp === 0 ? "baseline" : "resync"]++;
    if (this.calm || this.promoted) return;
    const free = KEYS.filter((k) => !this.busy(k));
    if (free.length > 0 && this.work.chance(0.6)) this.get(this.work.pick(free), this.dest);
    if (!this.failover && this.work.chance(0.15)) this.promote();
  }

  crashFaults(): CrashFaults {
    return { float: () => this.rng.float(), keepWrite: 0.5, tear: 0.5, flipBit: 0.2 };
  }

  fail(what: string): void {
    this.failure ??= { step: this.step, what };
  }

  get writer(): Machine {
    return this.promoted ? this.dest : this.source;
  }

  async run(): Promise<TrialFailure | null> {
    try {
      if (this.start === "baseline") await this.prelude();
      await this.boot(this.dest);
      await this.boot(this.source);
      for (this.step = 1; this.step <= this.steps && !this.failure; this.step++) {
        if (this.rot.chance(0.15)) this.damageDest();
        this.act();
        await this.runFor(this.work.int(300));
        this.checkDigests();
      }
      if (!this.failure) await this.heal();
    } catch (e) {
      if (!(e instanceof Failed)) {
        this.fail(`the simulator broke: ${e instanceof Error ? e.stack : e}`);
      }
    }
    return this.failure;
  }

  /**
   * A baseline's start: the source runs alone (no destination configured)
   * and takes writes and CPs, then loses power and boots with its empty
   * destination attached, which it must baseline under the usual faults.
   */
  async prelude(): Promise<void> {
    this.attached = false;
    await this.boot(this.source);
    for (let i = 0; i < 8 && !this.failure; i++) {
      const free = KEYS.filter((k) => !this.busy(k));
      if (free.length > 0) {
        const key = this.work.pick(free);
        if (this.work.chance(0.7)) this.put(key);
        else this.rangedWrite(key);
      }
      if (this.work.chance(0.4)) this.cp();
      await this.runFor(this.work.int(300));
    }
    this.preludeLsn = this.source.process?.handle.store.log.durableLsn ?? 0;
    this.crash(this.source, false);
    this.attached = true;
  }

  // ---- driving

  /** Runs events until `ms` of simulated time passed (or a check failed). */
  async runFor(ms: number): Promise<void> {
    const end = this.clock.elapsed + ms;
    await drain();
    while (!this.failure && this.clock.fireNext(end)) {
      await drain();
      this.#seeCatchUp();
      this.#crashDue();
    }
    if (this.failure) throw new Failed();
  }

  /** Counts the events after which the destination recorded a catch-up. */
  #seeCatchUp(): void {
    if (this.catchUpRecorded()) this.catchUpTicks++;
  }

  /**
   * Crashes waiting for their moment: each comes after a random number of
   * events (a timer, an fdatasync, a delivery), so crashes land at any await
   * point — inside a write's sync window, a CP's commit, a handshake.
   */
  #crashDue(): void {
    for (const c of [...this.scheduled]) {
      if (--c.events > 0) continue;
      this.scheduled.delete(c);
      this.crash(c.machine, c.restart);
    }
  }

  /** Crashes `m` after 1 to 60 events; `restart` false keeps it down (it is lost). */
  scheduleCrash(m: Machine, restart = true, events = this.work.range(1, 60)): void {
    this.scheduled.add({ machine: m, events, restart });
  }

  /** Runs until `done()` or `ms` of simulated time passed; false on the deadline. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    const end = this.clock.elapsed + ms;
    await drain();
    while (!done()) {
      if (this.failure) throw new Failed();
      if (!this.clock.fireNext(end)) return done();
      await drain();
      this.#seeCatchUp();
    }
    return true;
  }

  async boot(m: Machine): Promise<void> {
    if (m.up || this.booting.has(m)) return;
    if (m === this.dest && this.promoted && !this.promotedDurably()) {
      // The promotion never reached the disk (a crash came first): it did not happen.
      if (this.promoteAcked) return this.fail("an acknowledged promotion was lost in a crash");
      this.promoted = false;
    }
    // The old source always comes back paired: it must find out it was replaced (fencing).
    const run = m === this.source
      ? m.bootSource(this.attached ? this.dest : null)
      : this.promoted
      ? m.bootSource(null)
      : m.bootDest();
    this.booting.add(m);
    try {
      await run;
    } catch (e) {
      if (!m.up && /crashed while booting/.test(String(e))) return;
      this.fail(`${m.name} failed to start: ${e instanceof Error ? e.message : e}`);
    } finally {
      this.booting.delete(m);
    }
  }

  crash(m: Machine, restart = true): void {
    if (!m.up) return;
    this.crashes++;
    m.crash(this.crashFaults());
    if (m === this.dest) this.source.link?.reset();
    for (const p of [...this.pending]) {
      if (p.machine === m) {
        this.pending.delete(p);
        p.settle(null);
      }
    }
    if (!restart) return;
    const delay = this.work.range(50, 3000);
    this.clock.shared.setTimeout(() => void this.boot(m), delay);
  }

  /**
   * A disaster: both machines lose power at the same moment, the source for
   * good. The destination comes back and is promoted (a failover): every
   * write the source acknowledged must be on it.
   */
  disaster(): void {
    const events = this.work.range(1, 60);
    this.scheduleCrash(this.source, false, events);
    this.scheduleCrash(this.dest, true, events);
    this.failover = true;
  }

  /** Sends a request to `m` as a client; `settle` hears the answer (null: the machine crashed). */
  send(m: Machine, key: string | null, req: Request, settle: Pending["settle"]): void {
    const handler: Handler | null | undefined = m.process?.handler;
    if (!handler) {
      settle(null);
      return;
    }
    const p: Pending = { key, machine: m, incarnation: m.incarnation, settle };
    this.pending.add(p);
    (async () => {
      const res = await handler(req, PEER);
      const body = new Uint8Array(await res.arrayBuffer());
      return { status: res.status, body, headers: res.headers };
    })().then(
      (res) => {
        if (!this.pending.delete(p) || p.incarnation !== m.incarnation) return;
        settle(res);
      },
      (e) => {
        if (!this.pending.delete(p) || p.incarnation !== m.incarnation) return;
        if (isError(e, "corrupt")) {
          // A damaged block past the first piece breaks the body off: loud, like a 500.
          const body = new TextEncoder().encode(JSON.stringify({ error: "corrupt" }));
          return settle({ status: 500, body, headers: new Headers() });
        }
        this.fail(`${m.name}: ${req.method} ${new URL(req.url).pathname} threw ${e}`);
      },
    );
  }

  busy(key: string): boolean {
    for (const p of this.pending) if (p.key === key) return true;
    return false;
  }

  // ---- the workload

  act(): void {
    const w = this.work;
    const x = w.float();
    const free = KEYS.filter((k) => !this.busy(k));
    const key = free.length > 0 ? w.pick(free) : null;
    if (x < 0.3 && key) return this.put(key);
    if (x < 0.45 && key) return this.rangedWrite(key);
    if (x < 0.52 && key) return this.del(key);
    if (x < 0.68 && key) return this.get(key);
    if (x < 0.75) return this.cp();
    if (this.failover && this.dest.up && !this.promoted) return this.promote();
    if (x < 0.79) return this.scheduleCrash(this.source);
    if (x < 0.83) return this.scheduleCrash(this.dest);
    if (x < 0.88) {
      const link = this.source.link;
      if (link) link.partitioned = !link.partitioned;
      return;
    }
    if (x < 0.883 && !this.promoted) return this.promote();
    if (x < 0.89 && !this.promoted && !this.failover && !this.blankDest) return this.disaster();
    if (x < 0.895) return this.replaceDest();
    // Otherwise: time passes.
  }

  url(path: string): string {
    return `http://sim${path}`;
  }

  objectUrl(key: string): string {
    return this.url(`/v1/objects/${encodeURIComponent(key)}`);
  }

  /** Folds the answer to a write into the model. */
  outcome(what: string, status: number | null, ok: number[], not: number[]): Outcome {
    const o = this.#outcome(what, status, ok, not);
    this.writes[o]++;
    return o;
  }

  /** The model the reads of the writer check: the failover's once the destination is promoted. */
  get view(): PairModel {
    if (!this.promoted) return this.model;
    return this.promotedCaughtUp ? this.failoverModel : this.failoverBehind;
  }

  /**
   * Records a write of `key` with its outcome in both models. One the source
   * acknowledged out of sync is applied on the writer but only may be on the
   * destination; under the strict policy (invariant 4) and in sync, one
   * acknowledged is on both.
   */
  record(
    from: Machine,
    key: string,
    effect: (s: ObjectState) => ObjectState,
    outcome: Outcome,
    headers: Headers | undefined,
    whole = false,
  ): void {
    const mirrored = headers?.get("Refsync-Mirror");
    const lost = outcome === "applied" && from === this.source && this.attached &&
      this.policy === "available" && mirrored !== "in-sync";
    if (lost) this.outOfSync++;
    this.model.apply(key, effect, outcome, whole);
    this.failoverModel.apply(key, effect, lost ? "maybe" : outcome, whole);
    const alone = from === this.source && !this.attached;
    this.failoverBehind.apply(key, effect, lost || alone ? "maybe" : outcome, whole);
  }

  #outcome(what: string, status: number | null, ok: number[], not: number[]): Outcome {
    if (status === null) return "maybe";
    if (ok.includes(status)) return "applied";
    if (not.includes(status)) return "not";
    if (status === 503) return "maybe";
    this.fail(`${what}: unexpected status ${status}`);
    return "maybe";
  }

  put(key: string): void {
    const w = this.work;
    const r = w.float();
    const size = r < 0.05
      ? 0
      : r < 0.6
      ? w.range(1, 9000)
      : r < 0.95
      ? w.range(9000, 80_000)
      : w.range(1 << 20, (1 << 20) + 300_000);
    // Repeats: pool blocks (CP sync references), and bodies written lately, again whole or
    // remixed under another key (forwarded as references to records and blocks held).
    const c = this.repeats;
    const x = w.float();
    const data = x < 0.25
      ? c.fromPool(size)
      : x < 0.4
      ? c.again() ?? objectBytes(w, size)
      : x < 0.5
      ? c.remix(size)
      : this.#fresh(size);
    c.remember(data);
    const copy = w.chance(0.15);
    this.putBody(key, data, (outcome) => {
      // A copy under another key once acknowledged: the destination holds the original in its
      // log now (until its next CP), so the copy's payload is forwarded as one reference.
      if (!copy || outcome !== "applied") return;
      const other = KEYS.filter((k) => k !== key && !this.busy(k));
      if (other.length > 0) this.putBody(this.work.pick(other), data);
    });
    // A second writer a moment later: its record is logged while this one's batch is on the
    // stream, so its batch goes before that one is answered (the forwarder's window).
    const b = this.bursts;
    if (b?.chance(0.4)) {
      this.clock.shared.setTimeout(() => {
        const free = KEYS.filter((k) => !this.busy(k));
        if (free.length > 0 && !this.failure) this.put(b.pick(free));
      }, b.int(3));
    }
  }

  /**
   * A fresh body: random, or in a trial with moves, as often text or a moved
   * copy of text written lately (the work stream draws the same either way).
   */
  #fresh(size: number): Uint8Array {
    const random = objectBytes(this.work, size);
    return this.moves !== null && size > 0 && this.moves.chance() ? this.moves.body(size) : random;
  }

  /** A whole PUT of `data`; `then` hears its outcome. */
  putBody(key: string, data: Uint8Array, then?: (outcome: Outcome) => void): void {
    const req = new Request(this.objectUrl(key), {
      method: "PUT",
      body: data.slice() as Uint8Array<ArrayBuffer>,
      headers: { "Content-Length": String(data.length) },
    });
    const target = this.writer;
    this.send(target, key, req, (res) => {
      const status = res?.status ?? null;
      if (res && (status === 200 || status === 201)) {
        const etag = res.headers.get("ETag");
        if (etag !== `"${etagOf(data).toHex()}"`) this.fail(`PUT ${key}: ETag ${etag}`);
      }
      const outcome = this.outcome(`PUT ${key}`, status, [200, 201], [403, 507]);
      this.record(target, key, () => data, outcome, res?.headers, true);
      then?.(outcome);
    });
  }

  rangedWrite(key: string): void {
    const w = this.work;
    const size = this.model.states(key)?.[0]?.length ?? 0;
    const x = w.float();
    if (x < 0.3) return this.poolPatch(key, size);
    // Blocks written lately, into an aligned block of this key: forwarded as references.
    if (x < 0.5) {
      return this.writeAt(key, w.int(Math.floor(size / 4096) + 2) * 4096, this.repeats.blocks());
    }
    const data = objectBytes(w, w.range(1, 12_000));
    this.repeats.remember(data);
    this.writeAt(key, w.int(size + 9000), data);
  }

  /**
   * A pool block written into an aligned block of `key` in two ranged
   * writes: the CP patches it together, so it has no log recipe and the CP
   * sync asks the block locator where the destination holds those bytes — a
   * hint that goes stale once the block it names is freed and reused.
   */
  poolPatch(key: string, size: number): void {
    const w = this.work;
    const at = w.int(Math.floor(size / 4096) + 2) * 4096;
    const block = this.repeats.pool[w.int(this.repeats.pool.length)];
    const half = w.range(1, 4095);
    this.writeAt(key, at, block.subarray(0, half), () => {
      if (!this.busy(key)) this.writeAt(key, at + half, block.subarray(half));
    });
  }

  /** A ranged write of `data` at `offset`; `then` runs once it is answered. */
  writeAt(key: string, offset: number, data: Uint8Array, then?: () => void): void {
    const req = new Request(this.objectUrl(key), {
      method: "PUT",
      body: data.slice() as Uint8Array<ArrayBuffer>,
      headers: {
        "Content-Length": String(data.length),
        "Content-Range": `bytes ${offset}-${offset + data.length - 1}/*`,
      },
    });
    const target = this.writer;
    this.send(target, key, req, (res) => {
      const outcome = this.outcome(`PUT ${key} range`, res?.status ?? null, [200, 201], [403, 507]);
      this.record(target, key, (s) => writeRange(s, offset, data), outcome, res?.headers);
      then?.();
    });
  }

  del(key: string): void {
    const req = new Request(this.objectUrl(key), { method: "DELETE" });
    const target = this.writer;
    this.send(target, key, req, (res) => {
      const status = res?.status ?? null;
      if (status === 404) {
        const err = this.view.check(key, null);
        if (err) this.fail(`DELETE said 404: ${err}`);
        return;
      }
      const outcome = this.outcome(`DELETE ${key}`, status, [204], [403]);
      this.record(target, key, () => null, outcome, res?.headers, true);
    });
  }

  get(key: string, at?: Machine): void {
    const w = this.work;
    const ranged = w.chance(0.3);
    const start = w.int(20_000);
    const end = start + w.range(1, 20_000);
    const headers: Record<string, string> = ranged ? { Range: `bytes=${start}-${end - 1}` } : {};
    // Reads go to the writer, and sometimes to the destination (its last CP).
    const from = at ?? (!this.promoted && w.chance(0.2) ? this.dest : this.writer);
    const req = new Request(this.objectUrl(key), { headers });
    const initializing = from === this.dest && this.catchUpRecorded();
    this.send(from, key, req, (res) => {
      if (res === null) return;
      if (initializing && this.catchUpRecorded() && !this.promoted) {
        // An incomplete image serves nothing, not even a 404.
        const error = res.status === 503 ? errorOf(res.body) : null;
        if (error !== "unavailable") {
          return this.fail(
            `GET ${key} on the destination during a catch-up: status ${res.status} ${error ?? ""}`,
          );
        }
        this.initializingReads++;
        return;
      }
      if (res.status === 503) return;
      this.reads++;
      if (from === this.dest && !this.promoted) return; // a CP behind: checked at the end
      const model = this.view;
      let err: string | null = null;
      if (res.status === 404) err = model.check(key, null);
      else if (res.status === 200) err = model.check(key, res.body);
      else if (res.status === 206) err = model.check(key, res.body, { start, end });
      else if (res.status === 416) err = null; // a range past the end of some state
      else err = `status ${res.status}`;
      if (err) this.fail(`GET ${key}${ranged ? ` bytes=${start}-${end - 1}` : ""}: ${err}`);
    });
  }

  cp(): void {
    const req = new Request(this.url("/v1/admin/cp"), {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    // Sent to the destination while its promotion is unanswered: it may still be a destination.
    const promoting = this.promoted && !this.promoteAcked;
    this.send(this.writer, null, req, (res) => {
      if (res === null || res.status === 503 || res.status === 403) return;
      if (res.status === 409 && promoting && errorOf(res.body) === "conflict") return;
      if (res.status !== 200) {
        return this.fail(`CP: status ${res.status} ${new TextDecoder().decode(res.body)}`);
      }
      const { cp, digest } = JSON.parse(new TextDecoder().decode(res.body));
      // Committed on both sides: the destination's image is the same.
      const d = this.dest.process?.handle.store;
      if (!this.promoted && d && d.superblock.cp === cp && d.digest().digest !== digest) {
        this.fail(`CP ${cp}: destination digest ${d.digest().digest} != ${digest}`);
      }
      const s = this.source.process?.handle.store;
      if (!this.promoted && s && d && s.superblock.cp === cp && d.superblock.cp === cp) {
        this.checkImage();
      }
    });
  }

  promote(): void {
    if (!this.dest.up || this.blank()) return;
    const req = new Request(this.url("/v1/admin/promote"), {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    this.repairDest();
    // What the source acknowledged alone is there only once the destination received its log.
    const held = this.dest.process!.handle.store;
    this.promotedCaughtUp =
      Math.max(held.log.durableLsn, held.superblock.lsnCovered) >= this.preludeLsn;
    // Failover: the old source is cut off first (as an operator would when it is gone).
    if (this.source.link) this.source.link.partitioned = true;
    const initializing = this.catchUpRecorded();
    const ticks = this.catchUpTicks;
    this.send(this.dest, null, req, (res) => {
      if (res === null) return; // crashed mid-promotion: the role file decides at restart
      // Recorded at some moment of the request (seen after an event since it was sent).
      const recorded = initializing || this.catchUpRecorded() || this.catchUpTicks !== ticks;
      if (res.status === 409 && recorded) {
        // No complete image to promote: refused, nothing changed. The old source's disk is
        // not lost after all (else the pair's data would be): it comes back, the pair goes on.
        if (errorOf(res.body) !== "conflict") return this.fail("promote: 409 without conflict");
        this.promoteRefused++;
        this.promoted = false;
        if (this.failover) {
          this.failover = false;
          this.clock.shared.setTimeout(() => void this.boot(this.source), this.work.range(50, 500));
        }
        if (this.source.link) this.source.link.partitioned = false;
        return;
      }
      if (res.status !== 200) {
        return this.fail(`promote: status ${res.status} ${new TextDecoder().decode(res.body)}`);
      }
      this.promoteAcked = true;
      // The old source comes back later, and must find itself fenced.
      this.clock.shared.setTimeout(() => void this.boot(this.source), this.work.range(500, 3000));
    });
    this.promoted = true;
  }

  /** The destination (up) has never heard of a source since its disk is new. */
  blank(): boolean {
    const store = this.dest.process?.handle.store;
    if (!store || !this.blankDest) return false;
    if (store.superblock.cp > 0) this.blankDest = false;
    return this.blankDest && store.catchUp === null && store.log.lastLsn === 0;
  }

  /** The destination (up) records a catch-up: its image is incomplete. */
  catchUpRecorded(): boolean {
    return (this.dest.process?.handle.store.catchUp ?? null) !== null;
  }

  /**
   * The destination is replaced: it loses power and boots later on a new,
   * empty disk, which its source must baseline (under the usual faults).
   */
  replaceDest(): void {
    if (this.promoted || this.failover || !this.dest.up) return;
    this.crash(this.dest, false);
    this.dest.replaceDisk();
    this.blankDest = true;
    this.damage = [];
    this.forwarding.destReplaced();
    this.replaced++;
    this.clock.shared.setTimeout(() => void this.boot(this.dest), this.work.range(50, 3000));
  }

  /** The destination's role file says it is a source now. */
  promotedDurably(): boolean {
    const path = `${this.dest.dir}/role`;
    if (!this.dest.fs.existsSync(path)) return false;
    return JSON.parse(new TextDecoder().decode(this.dest.fs.readFileSync(path))).role === "source";
  }

  /**
   * A bit flipped at rest on the destination, in what references resolve
   * against: the payload of a record in its log (LOG_REF, PATCH; a forwarded
   * LOG piece) or a data block live in its committed CP (COPY, PATCH and DIFF
   * bases; a forwarded BLOCK piece), half the time one a forwarded reference
   * named (the locator keeps naming it). The
   * log's flip is in the cached copy only: on the medium it is what the log's
   * own checks refuse at the next open, beyond this model. The volume's is on
   * the medium: a read of it answers `corrupt`, the CP syncs must refuse it.
   */
  damageDest(): void {
    const m = this.dest;
    const store = m.process?.handle.store;
    if (!store || this.promoted) return;
    const r = this.rot;
    const log = () => payloadSpans(m.fs, `${m.dir}/log`);
    // While a catch-up is recorded its blocks overwrite the base's: that image is not whole (its
    // tree may not even walk), and the catch-up's commit checks every block it wrote.
    const volume = () => store.catchUp === null ? committedBlocks(store).filter((b) => b.data) : [];
    // Half the time what a forwarded reference named: the next one naming it must miss.
    const named = r.chance(0.5) ? this.forwarding.named(r) : null;
    if (named?.kind === "log") {
      const spans = log().filter((s) => s.lsn === named.lsn);
      if (spans.length > 0) return this.flipRecord(spans);
    } else if (named?.kind === "block") {
      const blocks = volume().filter((b) => b.block === named.block);
      if (blocks.length > 0) return this.flipBlock(blocks);
    }
    if (r.chance(0.5)) {
      // Mostly the records the next CP sync resolves against: those its committed CP lacks.
      const all = log();
      const next = all.filter((s) => s.lsn > store.superblock.lsnCovered);
      return this.flipRecord(next.length > 0 && r.chance(0.8) ? next : all);
    }
    this.flipBlock(volume());
  }

  /** A bit flipped in the cached copy of one of the destination's log payloads `spans`. */
  flipRecord(spans: ReturnType<typeof payloadSpans>): void {
    if (spans.length === 0) return;
    const r = this.rot;
    const s = spans[r.int(spans.length)];
    const d = flip(this.dest.fs, s.path, s.start * 8 + r.int((s.end - s.start) * 8), false);
    d.lsn = s.lsn;
    this.damage.push(d);
    this.flips++;
  }

  /** A bit flipped on the medium in one of the destination's committed data `blocks`. */
  flipBlock(blocks: TreeBlock[]): void {
    if (blocks.length === 0) return;
    const { block, key } = blocks[this.rot.int(blocks.length)];
    const m = this.dest;
    const bit = block * 4096 * 8 + this.rot.int(4096 * 8);
    this.flips++;
    // A block damaged already: the bytes it holds now are that damage's.
    const damaged = this.damage.find((d) => d.block?.block === block && stillDamaged(m.fs, d));
    if (damaged) return flipAgain(m.fs, damaged, bit);
    const d = flip(m.fs, `${m.dir}/volume.dat`, bit, true, true);
    d.block = { block, key: key! };
    this.damage.push(d);
  }

  /**
   * A promotion starts from an intact disk: the promoted side holds the only
   * copy, so a damaged block there stays damaged (and a CP that would patch
   * it fails, docs/internals.md §4) until issue 10's repair can fetch it.
   */
  repairDest(): void {
    for (const d of this.damage) repair(this.dest.fs, d);
    this.damage = [];
  }

  /** The bytes of `block` on the destination are what the fault model left there. */
  damagedBlock(block: number, bytes: Uint8Array): boolean {
    return this.damage.some((d) =>
      d.block?.block === block && stillDamaged(this.dest.fs, d) && equalBytes(d.bytes, bytes)
    );
  }

  /** The destination's bytes of record `lsn` hold a bit the fault model flipped. */
  damagedRecord(lsn: number): boolean {
    return this.damage.some((d) => d.lsn === lsn && stillDamaged(this.dest.fs, d));
  }

  /** Both sides at the same CP: the destination's image is the source's, but for damage. */
  checkImage(): void {
    const s = this.source.process!.handle.store;
    const d = this.dest.process!.handle.store;
    const wrong = imageDifference(s, d, (b, bytes) => this.damagedBlock(b, bytes));
    if (wrong) this.fail(wrong);
  }

  /** Keys whose committed bytes on the destination include a block damaged at rest. */
  damagedKeys(): Set<string> {
    const store = this.dest.process!.handle.store;
    const keys = new Set<string>();
    for (const b of committedBlocks(store)) {
      if (b.data && b.key !== null && this.damagedBlock(b.block, store.volume.readBlock(b.block))) {
        keys.add(b.key);
      }
    }
    return keys;
  }

  /** No (generation, CP) ever has two images, on either side. */
  checkDigests(): void {
    for (const m of [this.source, this.dest]) {
      const store = m.process?.handle.store;
      if (!store) continue;
      if (m === this.dest) this.blank();
      const sb = store.superblock;
      const id = `${sb.pairGeneration}:${sb.cp}`;
      const digest = store.digest().digest;
      const seen = this.digests.get(id);
      if (seen === undefined) this.digests.set(id, digest);
      else if (seen !== digest) {
        this.fail(
          `${m.name} committed CP ${sb.cp} (generation ${sb.pairGeneration}) with another image`,
        );
      }
    }
  }

  /** The source's `mirror.state` and `mirror.lastError` (`GET /v1/admin/stats`), null if down. */
  async mirrorState(): Promise<{ state: string; lastError: string | null } | null> {
    let got: { state: string; lastError: string | null } | null | undefined;
    const req = new Request(this.url("/v1/admin/stats"), {
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    this.send(this.source, null, req, (res) => {
      got = res?.status === 200
        ? JSON.parse(new TextDecoder().decode(res.body)).mirror ?? null
        : null;
    });
    await this.until(() => got !== undefined, 10_000);
    return got ?? null;
  }

  // ---- the end: heal, then check everything

  async heal(): Promise<void> {
    this.calm = true;
    this.scheduled.clear();
    if (this.failover && !this.promoted) {
      await this.until(() => this.dest.up, 10_000);
      this.promote();
    }
    if (this.source.link) this.source.link.partitioned = false;
    for (const m of [this.source, this.dest]) {
      await this.boot(m);
    }
    await this.until(() => this.booting.size === 0 && this.source.up && this.dest.up, 10_000);
    if (!this.source.up || !this.dest.up) return this.fail("a machine did not come back up");
    if (!(await this.until(() => this.pending.size === 0, 60_000))) {
      this.fail(`${this.pending.size} client requests never answered`);
      return;
    }
    if (!this.promoted) {
      // Healed, the pair gets in sync by itself: a baseline or resync runs to its end. The source
      // may not have heard from its destination since it was replaced: it looks now and then.
      await this.runFor(LOOK_MS + 100);
      let state = await this.mirrorState();
      for (let i = 0; i < 300 && state?.state !== "in-sync"; i++) {
        await this.runFor(200);
        state = await this.mirrorState();
      }
      if (state?.state !== "in-sync") {
        return this.fail(
          `60 s after healing the mirror is ${state?.state} (${state?.lastError ?? "no error"})`,
        );
      }
    }
    // A CP now must commit (on both sides when paired), and show the same image there.
    let answer: { cp: number; digest: string } | null = null;
    for (let attempt = 0; attempt < 10 && answer === null; attempt++) {
      await this.runFor(500);
      const req = new Request(this.url("/v1/admin/cp"), {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      let res: { status: number; body: Uint8Array } | null = null;
      this.send(this.writer, null, req, (r) => res = r);
      await this.until(() => res !== null || !this.writer.up, 30_000);
      const r = res as { status: number; body: Uint8Array } | null;
      if (r?.status === 200) answer = JSON.parse(new TextDecoder().decode(r.body));
    }
    if (answer === null) return this.fail("no CP committed within 10 attempts after healing");
    this.checkDigests();
    if (!this.promoted) {
      const d = this.dest.process!.handle.store.digest();
      if (d.cp !== answer.cp || d.digest !== answer.digest) {
        return this.fail(
          `after the final CP ${answer.cp}: destination at CP ${d.cp} with digest ${d.digest}, source ${answer.digest}`,
        );
      }
      this.checkImage();
      if (this.failure) return;
    }
    // A damaged block may make its object unreadable on the destination: loudly, never wrong.
    const unreadable = this.promoted ? new Set<string>() : this.damagedKeys();
    // Every key reads as the model allows, on the writer and (paired) on the destination.
    const readers = this.promoted ? [this.dest] : [this.source, this.dest];
    for (const m of readers) {
      for (const key of KEYS) {
        let got: ObjectState | undefined;
        let status = 0;
        let error = "";
        this.send(m, key, new Request(this.objectUrl(key)), (res) => {
          status = res?.status ?? -1;
          got = res?.status === 200 ? res.body : null;
          if (res?.status === 500) error = errorOf(res.body) ?? "";
        });
        await this.until(() => status !== 0, 10_000);
        if (m === this.dest && unreadable.has(key) && status === 500 && error === "corrupt") {
          continue;
        }
        if (status !== 200 && status !== 404) {
          return this.fail(`final GET ${key} on ${m.name}: status ${status}`);
        }
        const err = this.view.check(key, got ?? null);
        if (err) return this.fail(`final read on ${m.name}: ${err}`);
      }
    }
  }
}

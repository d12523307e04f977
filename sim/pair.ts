/**
 * A simulated pair: two machines, each with its own in-memory disk, running
 * the real appliances (`startSource`, `startDest`) with the simulator's clock,
 * seeded randomness, in-memory network and disk. A machine can crash at any
 * moment (its process state is dropped, its disk keeps only what was synced)
 * and boot again from what its disk holds.
 *
 * @module
 */
import { type DestHandle, startDest } from "../src/edge-dest/server.ts";
import { type SourceHandle, startSource } from "../src/edge-source/server.ts";
import {
  type LinkFaults,
  MemoryLink,
  memoryReplicaClient,
} from "../src/edge-source/mirror/memory-client.ts";
import type { CpPartAnswer, ReplicaClient } from "../src/edge-source/mirror/replica-client.ts";
import type { Serve } from "../src/http/serve.ts";
import type { CatchUpBegin } from "../src/protocol/handshake/mod.ts";
import type { WireStats } from "../src/protocol/cp-sync/stats.ts";
import type { SyncPolicy } from "../src/protocol/mirror-state/mod.ts";
import { createLogger } from "../src/logging/mod.ts";
import type { Prng } from "../src/runtime/random.ts";
import { type CrashFaults, MemoryFileSystem } from "../src/storage/fs/memory.ts";
import type { ProcessClock, SimClock } from "./clock.ts";
import type { LinkTap } from "./forwarding.ts";

/** The pair token of every simulated pair. */
export const TOKEN = "sim-pair-token";

/** A request handler of a running appliance. */
export type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/** What the simulator learns from the appliances' logs. */
export interface LogWatch {
  /** A warning or error line (JSON) of machine `name`. */
  line(name: string, line: string): void;
}

/** The tuning of a simulated pair: small, so that a short trial crosses every boundary. */
export const SIM_CONFIG = {
  cpIntervalMs: 500,
  cpDirtyBytes: 256 << 10,
  maxObjectBytes: 8 << 20,
  syncTimeoutMs: 1000,
  bodyIdleTimeoutMs: 5000,
  spaceReserve: 0,
  // No S3 face: the simulator drives the native API.
  s3: { port: null, accessKey: null, secretKey: null, uploadExpiryMs: 86_400_000 },
};

/** One box: a disk that outlives its processes, and the process running on it (if any). */
export class Machine {
  readonly name: string;
  /** Its disk: replaced by an empty one when the machine is replaced ({@link Machine.replaceDisk}). */
  fs: MemoryFileSystem;
  readonly dir: string;
  /** The running process, or null while it is down. */
  process:
    | { clock: ProcessClock; handler: Handler | null; handle: SourceHandle | DestHandle }
    | null = null;
  /** The link of this machine's source to its destination (a source with a mirror). */
  link: MemoryLink | null = null;
  /** Bumped at every boot and crash: work of an earlier process is ignored. */
  incarnation = 0;
  readonly #sim: Simulation;

  constructor(sim: Simulation, name: string) {
    this.#sim = sim;
    this.name = name;
    this.dir = `/${name}`;
    this.fs = this.#disk();
  }

  #disk(): MemoryFileSystem {
    const sim = this.#sim;
    return new MemoryFileSystem({
      // An fdatasync takes 0 to 2 ms of simulated time: the window a crash can fall into.
      schedule: (done) => sim.clock.shared.setTimeout(done, sim.rng.int(3)),
    });
  }

  /** The machine (down) gets a new, empty disk: "the destination was replaced". */
  replaceDisk(): void {
    if (this.up) throw new Error(`${this.name}: replacing the disk of a running machine`);
    this.fs = this.#disk();
  }

  get up(): boolean {
    return this.process !== null;
  }

  /** The machine loses power. */
  crash(faults: CrashFaults | undefined): void {
    this.incarnation++;
    const p = this.process;
    this.process = null;
    p?.clock.kill();
    this.link?.close();
    this.link = null;
    this.fs.crash(faults);
  }

  /** Boots a source (mirroring to `dest` when given) on this machine's disk. */
  async bootSource(dest: Machine | null): Promise<SourceHandle> {
    const sim = this.#sim;
    const clock = sim.clock.process();
    const incarnation = ++this.incarnation;
    let handler: Handler | null = null;
    const link = dest === null ? null : new MemoryLink({
      clock,
      target: () => dest.process?.handler ?? null,
      faults: sim.linkFaults,
    });
    const handle = await startSource({
      host: "127.0.0.1",
      port: 0,
      data: this.dir,
      dest: dest === null ? null : `http://${dest.name}.sim`,
      token: TOKEN,
      clientToken: null,
      cpSync: "refs",
      syncPolicy: sim.policy,
      logLevel: "warn",
      ...SIM_CONFIG,
    }, {
      logger: this.#logger(clock),
      fileOps: this.fs,
      clock,
      random: sim.rng.fork(),
      serve: this.#serve((h) => handler = h),
      replicaClient: link
        ? (url, token, wire, random) =>
          this.#tapped(
            memoryReplicaClient(link, url, token, wire, random, { stream: sim.stream }),
            sim.forwarding.tap(this, wire),
          )
        : undefined,
    });
    if (incarnation !== this.incarnation) throw new Error("crashed while booting");
    this.link = link;
    this.process = { clock, handler, handle };
    return handle;
  }

  /** Boots a destination on this machine's disk. */
  async bootDest(): Promise<DestHandle> {
    const sim = this.#sim;
    const clock = sim.clock.process();
    const incarnation = ++this.incarnation;
    let handler: Handler | null = null;
    const handle = await startDest({
      host: "127.0.0.1",
      port: 0,
      data: this.dir,
      token: TOKEN,
      clientToken: null,
      logLevel: "warn",
      cpIntervalMs: SIM_CONFIG.cpIntervalMs,
      cpDirtyBytes: SIM_CONFIG.cpDirtyBytes,
      maxObjectBytes: SIM_CONFIG.maxObjectBytes,
      bodyIdleTimeoutMs: SIM_CONFIG.bodyIdleTimeoutMs,
      spaceReserve: SIM_CONFIG.spaceReserve,
      s3: SIM_CONFIG.s3,
    }, {
      logger: this.#logger(clock),
      fileOps: this.fs,
      clock,
      random: sim.rng.fork(),
      serve: this.#serve((h) => handler = h),
    });
    if (incarnation !== this.incarnation) throw new Error("crashed while booting");
    this.process = { clock, handler, handle };
    return handle;
  }

  /**
   * The client with its log batches, CP sync parts and answers shown to the
   * simulation's checks (`tap`: what this client heard the destination holds).
   */
  #tapped(client: ReplicaClient, tap: LinkTap): ReplicaClient {
    const sim = this.#sim;
    return {
      url: client.url,
      get pipelined() {
        return client.pipelined;
      },
      state: async () => tap.heard(await client.state()),
      resetLog: async (body) => tap.heard(await client.resetLog(body)),
      sendFrames: async (frames, opts) => {
        const batch = tap.sending(frames);
        const acked = await client.sendFrames(batch.bytes, opts);
        tap.acked(batch, acked);
        return acked;
      },
      sendCpPart: async (cp, part, last, bytes) => {
        await sim.cpSync.sent(this, bytes);
        const answer = await client.sendCpPart(cp, part, last, bytes);
        sim.cpSync.answered(this, cp, answer);
        tap.answered(cp, answer);
        return answer;
      },
      verifyDigests: (cp) => client.verifyDigests(cp),
      repair: (cp, bytes) => client.repair(cp, bytes),
      beginCatchUp: async (body) => {
        const state = tap.heard(await client.beginCatchUp(body));
        sim.catchUpBegun(body);
        return state;
      },
      // A catch-up's references are checked as a CP sync's.
      sendCatchUpPart: async (cp, part, last, bytes, kind) => {
        await sim.cpSync.sent(this, bytes);
        const answer = await client.sendCatchUpPart(cp, part, last, bytes, kind);
        sim.cpSync.answered(this, cp, answer);
        tap.answered(cp, answer);
        return answer;
      },
    };
  }

  #serve(capture: (handler: Handler) => void): Serve {
    return (_host, _port, handler) => {
      capture(handler as Handler);
      return { addr: { port: 1 }, shutdown: () => Promise.resolve() };
    };
  }

  #logger(clock: ProcessClock) {
    const watch = this.#sim.watch;
    return createLogger({
      level: "warn",
      now: () => clock.now(),
      // A dead process's code runs on in this one (its disk's fds closed under it): not heard.
      sink: (line) => {
        if (!clock.dead) watch.line(this.name, line);
      },
    });
  }
}

/** The world of one trial: one clock, one seeded generator, the network's faults. */
export interface Simulation {
  clock: SimClock;
  /** The source's `--sync-policy`. */
  policy: SyncPolicy;
  /** Log batches go on a log stream over the link. */
  stream: boolean;
  rng: Prng;
  linkFaults: LinkFaults;
  watch: LogWatch;
  cpSync: CpSyncWatch;
  /** What the simulator checks of the log batches a source forwards (`sim/forwarding.ts`). */
  forwarding: { tap(source: Machine, wire: WireStats): LinkTap };
  /** The destination recorded a catch-up (its answer to `beginCatchUp` came). */
  catchUpBegun(body: CatchUpBegin): void;
}

/** What the simulator checks of the CP syncs a source sends. */
export interface CpSyncWatch {
  /** A part `source` is about to send (its records are whole). */
  sent(source: Machine, bytes: Uint8Array): Promise<void>;
  /** The destination's answer to a part of the sync of `cp`. */
  answered(source: Machine, cp: number, answer: CpPartAnswer): void;
}

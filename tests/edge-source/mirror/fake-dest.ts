/**
 * A fake destination for tests of the mirror on a real store: it claims to
 * hold the store's own committed CP and the log it was sent, and a
 * {@link Mirror} on the simulator's clock wired to it.
 *
 * @module
 */
import { RefsyncError } from "../../../src/errors/mod.ts";
import { Mirror } from "../../../src/edge-source/mirror/mirror.ts";
import type {
  CpPartAnswer,
  ReplicaClient,
} from "../../../src/edge-source/mirror/replica-client.ts";
import type { Logger } from "../../../src/logging/mod.ts";
import type { CatchUpBegin, DestState, LogReset } from "../../../src/protocol/handshake/mod.ts";
import { type WireFrame, WireFrameParser } from "../../../src/protocol/log-frame/mod.ts";
import type { SyncPolicy } from "../../../src/protocol/mirror-state/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { SimClock } from "../../../sim/clock.ts";
import { advance } from "../../support/sim-time.ts";
import { STORE_OPTS } from "../../storage/store_model.ts";

/** A destination holding our volume at our CP and every frame it was sent; it can be down. */
export class FakeDest implements ReplicaClient {
  readonly url = "http://dest.test";
  down = false;
  held = 0;
  store: ObjectStore | null = null;
  /** What its handshake says it reads (undefined: the field is absent, an older destination). */
  refFormat: number | undefined = undefined;

  state(): Promise<DestState> {
    if (this.down) return Promise.reject(unreachable());
    return Promise.resolve({
      ...inSyncState(this.store!, this.held),
      ...(this.refFormat === undefined ? {} : { refFormat: this.refFormat }),
    });
  }

  resetLog(_body: LogReset): Promise<DestState> {
    return this.state();
  }

  sendFrames(frames: Uint8Array): Promise<number> {
    if (this.down) return Promise.reject(unreachable());
    // Whole and reference frames (refs mode) alike.
    new WireFrameParser().push(frames.slice(), (f) => {
      this.received(f);
      this.held = f.header.lsn;
    });
    return Promise.resolve(this.held);
  }

  /** Called with each frame received. */
  received(_frame: WireFrame): void {}

  sendCpPart(_cp: number, _part: number, _last: boolean): Promise<CpPartAnswer> {
    return Promise.reject(new Error("no CPs in this test"));
  }

  beginCatchUp(_body: CatchUpBegin): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no catch-up here"));
  }

  sendCatchUpPart(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no catch-up here"));
  }

  verifyDigests(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no verify here"));
  }

  repair(): Promise<never> {
    return Promise.reject(new RefsyncError("conflict", "no repair here"));
  }
}

/** The handshake answer of a destination at `store`'s committed CP, holding the log to `lastLsn`. */
export function inSyncState(store: ObjectStore, lastLsn: number): DestState {
  const sb = store.superblock;
  return {
    volumeId: sb.volumeId.toHex(),
    pairGeneration: sb.pairGeneration,
    cp: sb.cp,
    volumeDigest: sb.volumeDigest.toHex(),
    lsnCovered: sb.lsnCovered,
    firstLsn: 1,
    lastLsn,
    promoted: false,
    promotedAtLsn: null,
    catchUp: null,
  };
}

/** The error of an unreachable destination. */
export function unreachable(): RefsyncError {
  return new RefsyncError("unavailable", "destination http://dest.test unreachable: refused");
}

/** A mirror (refs mode, `--sync-timeout` 2 s) on a store in `dir`, on the simulator's clock. */
export interface FakeMirror {
  mirror: Mirror;
  store: ObjectStore;
  sim: SimClock;
}

/** `--sync-timeout` of {@link withFakeMirror}. */
export const SYNC_TIMEOUT_MS = 2000;

/**
 * Runs `fn` with a mirror to `dest` on a store opened in `dir` (`dest`
 * holds what the store logged before: a restart), with the mirror's store
 * hooks as `hooks` makes them (a test's wrapper); closes both after.
 */
export async function withFakeMirror(
  dir: string,
  dest: FakeDest,
  opts: { policy: SyncPolicy; logger: Logger; hooks?: (hooks: Mirror["hooks"]) => Mirror["hooks"] },
  fn: (ctx: FakeMirror) => Promise<void>,
): Promise<void> {
  const sim = new SimClock();
  const clock = sim.process();
  const { logger } = opts;
  const mirror = new Mirror({
    url: dest.url,
    token: "t",
    syncTimeoutMs: SYNC_TIMEOUT_MS,
    policy: opts.policy,
    mode: "refs",
    quarantineDir: `${dir}/quarantine`,
    client: () => dest,
    clock,
    logger,
  });
  const hooks = opts.hooks?.(mirror.hooks) ?? mirror.hooks;
  const store = await ObjectStore.open(dir, { ...STORE_OPTS, ...hooks, clock, logger });
  dest.store = store;
  dest.held = store.log.lastLsn;
  mirror.attach(store);
  try {
    await advance(sim, 10);
    await fn({ mirror, store, sim });
  } finally {
    const closed = mirror.close();
    await advance(sim, 2000);
    await closed;
    await store.close();
  }
}

/**
 * The source's side of the pair: handshake with the destination, log
 * forwarding (strict sync) and the CP sync of every committed CP.
 *
 * Handshake rules (each refusal is a clear, permanent error until an operator
 * acts): the destination must not have been promoted (its pair generation
 * must not exceed ours), its volume must be ours (same volume id once it has a
 * CP), and it must be at our CP or the one before (then that CP is sent again).
 * Log: a destination ahead of our log (a tail we lost before fsyncing it, so
 * never acknowledged) is truncated to our last LSN; one behind our oldest
 * record skips to it when its committed CP covers the gap.
 *
 * @module
 */
import { toHex } from "../../block-index/mod.ts";
import { authHeader } from "../../protocol/auth/mod.ts";
import { RefsyncError } from "../../errors/mod.ts";
import { newWireStats, type WireStats } from "../../protocol/cp-sync/stats.ts";
import type { Appended } from "../../storage/log/mod.ts";
import type { CheckpointResult, ObjectStore } from "../../storage/objects/store.ts";
import type { DestState } from "../../edge-dest/app.ts";
import { blockCheck, type CpRecord, runCheck } from "../../protocol/cp-sync/records.ts";
import { BlockLocator, contentMatches } from "./block-locator.ts";
import { type CpSyncMode, cpSyncParts } from "./cp-sync-sender.ts";
import { LogForwarder } from "./log-forwarder.ts";

/** Configuration of the mirror. */
export interface MirrorOptions {
  /** Base URL of the destination appliance. */
  url: string;
  token: string;
  syncTimeoutMs: number;
  mode: CpSyncMode;
}

/**
 * Connects a source store to its destination.
 *
 * @example
 * ```ts
 * const mirror = new Mirror({ url, token, syncTimeoutMs: 5000, mode: "refs" });
 * const store = await ObjectStore.open(dir, { ...opts, ...mirror.hooks });
 * mirror.attach(store);
 * ```
 */
export class Mirror {
  readonly options: MirrorOptions;
  readonly wire: WireStats = newWireStats();
  #store: ObjectStore | null = null;
  #forwarder: LogForwarder | null = null;
  #destCp = -1;
  #handshakes = 0;
  readonly locator: BlockLocator = new BlockLocator();

  constructor(options: MirrorOptions) {
    this.options = options;
  }

  /** The store hooks: pass them to ObjectStore.open. */
  get hooks(): {
    replicate: (written: Appended[]) => Promise<void>;
    syncCheckpoint: (cp: CheckpointResult) => Promise<void>;
    ready: () => Promise<void>;
  } {
    return {
      replicate: (written) => {
        if (this.options.mode === "refs") this.locator.addLogRecords(written);
        return this.#forwarder!.forward(written);
      },
      syncCheckpoint: (cp) => this.#syncCheckpoint(cp),
      ready: () => this.#ready(),
    };
  }

  /** CPs wait for the first handshake: it decides whether our last CP must be sent again. */
  async #ready(): Promise<void> {
    for (let waited = 0; this.#handshakes === 0; waited += 50) {
      const f = this.#forwarder;
      if (f?.fatal) throw new RefsyncError("unavailable", f.fatal);
      if (waited >= this.options.syncTimeoutMs) {
        throw new RefsyncError(
          "unavailable",
          `no handshake with the destination yet${f?.lastError ? `: ${f.lastError}` : ""}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Starts forwarding for `store` (opened with {@link Mirror.hooks}). */
  attach(store: ObjectStore): void {
    this.#store = store;
    this.#forwarder = new LogForwarder(store.log, {
      connect: () => this.#handshake(),
      send: (frames) => this.#sendFrames(frames),
    }, { syncTimeoutMs: this.options.syncTimeoutMs, wire: this.wire });
    this.#forwarder.start();
  }

  /** Why the pair is broken for good (writes must be refused), or null. */
  refusal(): string | null {
    return this.#forwarder?.fatal ?? null;
  }

  /** Mirror state for `/v1/admin/stats`. */
  stats(): Record<string, unknown> {
    const f = this.#forwarder;
    return {
      mirror: {
        destination: this.options.url,
        mode: this.options.mode,
        connected: f?.connected ?? false,
        ackedLsn: f?.ackedLsn ?? 0,
        destinationCp: this.#destCp,
        lastError: f?.fatal ?? f?.lastError ?? null,
      },
    };
  }

  async close(): Promise<void> {
    await this.#forwarder?.stop();
  }

  async #request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = { ...authHeader(this.options.token), ...(init.headers ?? {}) };
    let res: Response;
    try {
      res = await fetch(new URL(path, this.options.url), { ...init, headers });
    } catch (e) {
      throw new RefsyncError(
        "unavailable",
        `destination ${this.options.url} unreachable: ${e instanceof Error ? e.message : e}`,
      );
    }
    return res;
  }

  async #json<T>(res: Response): Promise<T> {
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text.slice(0, 200) };
    }
    if (!res.ok) {
      const message = (body as { message?: string }).message ?? res.statusText;
      throw new RefsyncError("unavailable", `destination answered ${res.status}: ${message}`);
    }
    return body as T;
  }

  async #state(): Promise<DestState> {
    return await this.#json<DestState>(await this.#request("/v1/repl/state"));
  }

  async #handshake(): Promise<number> {
    const store = this.#store!;
    const sb = store.superblock;
    let state = await this.#state();
    if (state.promoted || state.pairGeneration > sb.pairGeneration) {
      throw new RefsyncError(
        "forbidden",
        `the destination was promoted (pair generation ${state.pairGeneration} > ours ${sb.pairGeneration}); ` +
          "this source must not take writes any more (no split brain)",
      );
    }
    if (state.cp > 0 && state.volumeId !== toHex(sb.volumeId)) {
      throw new RefsyncError(
        "forbidden",
        "the destination holds another volume: unrelated histories",
      );
    }
    if (state.cp > sb.cp || state.cp < sb.cp - 1) {
      throw new RefsyncError(
        "forbidden",
        `the destination is at CP ${state.cp} and this source at CP ${sb.cp}: unrelated histories; ` +
          "start the destination from an empty data directory",
      );
    }
    if (state.cp === sb.cp && state.volumeDigest !== toHex(sb.volumeDigest)) {
      throw new RefsyncError("forbidden", `the volumes diverged at CP ${sb.cp}: digests differ`);
    }
    if (state.cp === sb.cp - 1 && !store.needsSync) {
      // We committed a CP the destination lacks, and restarted since: send it again from the volume.
      store.markUnsynced(store.rebuildLastCheckpoint());
    }
    const log = store.log;
    if (state.lastLsn > log.lastLsn) {
      state = await this.#reset({ truncateAfter: log.lastLsn });
    }
    if (state.lastLsn + 1 < log.firstLsn) {
      state = await this.#reset({ lastLsn: log.firstLsn - 1 });
    }
    this.#destCp = state.cp;
    this.#handshakes++;
    return state.lastLsn;
  }

  async #reset(body: Record<string, number>): Promise<DestState> {
    return await this.#json<DestState>(
      await this.#request("/v1/repl/log/reset", {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" },
      }),
    );
  }

  async #sendFrames(frames: Uint8Array): Promise<number> {
    const res = await this.#request("/v1/repl/log", {
      method: "POST",
      body: frames as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": "application/octet-stream" },
    });
    return (await this.#json<{ lastLsn: number }>(res)).lastLsn;
  }

  async #syncCheckpoint(cp: CheckpointResult): Promise<void> {
    const forwarder = this.#forwarder!;
    if (forwarder.fatal) throw new RefsyncError("unavailable", forwarder.fatal);
    // References resolve against the destination's log: it must hold the records first.
    const maxLsn = cp.written.maxLsn();
    await forwarder.waitAcked(
      Math.min(maxLsn, this.#store!.log.lastLsn),
      this.options.syncTimeoutMs,
    );
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
      const body = await res.json().catch(() => ({})) as { need?: number[]; message?: string };
      if (res.ok) {
        this.#destCp = cp.superblock.cp;
        this.#indexWritten(cp);
        return;
      }
      lastMessage = body.message ?? res.statusText;
      if (res.status === 409 && Array.isArray(body.need)) {
        for (const b of body.need) forceData.add(b);
        continue;
      }
      break;
    }
    // The destination may have committed although its answer was lost.
    const state = await this.#state().catch(() => null);
    if (
      state && state.cp === cp.superblock.cp &&
      state.volumeDigest === toHex(cp.superblock.volumeDigest)
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
    // The destination drops log its committed CP covers, and holds only what it acknowledged.
    const dropped = store.volume.previousSuperblock?.lsnCovered ?? 0;
    if (where.lsn <= dropped || where.lsn > this.#forwarder!.ackedLsn) return null;
    const rec = store.log.locate(where.lsn);
    if (rec === null || where.payloadOffset + 4096 > rec.payloadLength) return null;
    if (!contentMatches(store.log.readPayload(rec.position, where.payloadOffset, 4096), digest)) {
      return null;
    }
    return {
      kind: "logRef",
      block,
      count: 1,
      lsn: where.lsn,
      payloadOffset: where.payloadOffset,
      check: runCheck(digest),
    };
  }

  /**
   * Sends the parts of one CP sync in order; every part but the last is
   * answered 202. Resolves with the answer to the last part (or the first
   * refusal), or the transport error.
   */
  async #sendParts(
    cp: number,
    parts: Generator<Uint8Array<ArrayBuffer>>,
  ): Promise<Response | Error> {
    let part = parts.next();
    for (let index = 0; !part.done; index++) {
      const next = parts.next();
      const last = next.done === true;
      const res = await this.#request(`/v1/repl/cp?cp=${cp}&part=${index}&last=${last ? 1 : 0}`, {
        method: "POST",
        body: part.value,
        headers: { "Content-Type": "application/octet-stream" },
      }).catch((e) => e as Error);
      if (res instanceof Error || last || res.status !== 202) return res;
      await res.body?.cancel();
      part = next;
    }
    return new Error("invariant: a CP sync has at least one part");
  }
}

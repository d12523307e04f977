/**
 * How a source talks to its destination, behind one small interface (as
 * Litestream's `ReplicaClient` has one implementation per backend): the
 * handshake state, log resets, log frames, CP sync parts, and the online
 * verify's digest streams and repairs. One file per
 * implementation: HTTP ({@link HttpReplicaClient} in `./http-client.ts`, what
 * the appliance uses) and in-memory (`./memory-client.ts`, the simulator's
 * network, which delivers requests to the destination's app directly and can
 * delay, drop, duplicate, cut and partition them).
 *
 * Catch-ups (baseline, resync) have their own begin and parts
 * (`/v1/repl/catch-up/begin`, `/v1/repl/catch-up?cp&part&last`).
 *
 * Every method rejects with a RefsyncError: `unavailable` when the
 * destination could not be reached or answered 5xx (transient),
 * `unauthorized` for a refused token, `conflict` for any other refusal.
 *
 * @module
 */
import type { CatchUpBegin, DestState, LogReset } from "../../protocol/handshake/mod.ts";
import type { DigestReader, RepairAnswer } from "../../protocol/verify/mod.ts";

/** A catch-up from an empty destination (baseline) or from its committed CP (resync). */
export type CatchUpKind = "baseline" | "resync";

/** What the destination answered to one CP sync part. */
export interface CpPartAnswer {
  /** The HTTP status: 202 (more parts), 200 (committed), 409 (`need` DATA), ... */
  status: number;
  /** Blocks the destination needs as DATA (with 409). */
  need?: number[];
  /** Why it was refused. */
  message?: string;
}

/** The source's connection to its destination. */
export interface ReplicaClient {
  /** Where the destination is (for logs and stats). */
  readonly url: string;
  /** The destination's replication state (the handshake). */
  state(): Promise<DestState>;
  /**
   * The same state without a handshake's effects on the link (its
   * compression epoch and log stream go on): a look while the link is up.
   * Absent: {@link ReplicaClient.state} serves.
   */
  look?(): Promise<DestState>;
  /** Truncates (`truncateAfter`) or skips (`lastLsn`) the destination's log; its new state. */
  resetLog(body: LogReset): Promise<DestState>;
  /**
   * Appends frames to the destination's log; resolves with its highest
   * durable LSN. `repeats`: the batch repeats content of its own that dedup
   * could not name (a hint for the link's compression).
   */
  sendFrames(frames: Uint8Array, opts?: { repeats?: boolean }): Promise<number>;
  /**
   * True when batches go where they arrive in the order sent (the log
   * stream), so the next may be sent before the last is answered: the
   * client puts them on the wire in call order. Absent or false: one at a time.
   */
  readonly pipelined?: boolean;
  /**
   * Sends part `part` of the CP sync of CP `cp`. Resolves with the answer
   * whatever its status (the caller decides); rejects only when no answer came.
   */
  sendCpPart(cp: number, part: number, last: boolean, bytes: Uint8Array): Promise<CpPartAnswer>;
  /**
   * The digest stream of the destination's committed CP `cp` (`conflict`
   * when it is at another CP). Read it to its end or cancel it: the
   * destination pins that CP while it streams.
   */
  verifyDigests(cp: number): Promise<DigestReader>;
  /** Sends repair records (`encodeRepair`) for the destination's committed CP `cp`. */
  repair(cp: number, bytes: Uint8Array): Promise<RepairAnswer>;
  /** Records a catch-up on the destination (durably, before its first block); its new state. */
  beginCatchUp(body: CatchUpBegin): Promise<DestState>;
  /**
   * Sends part `part` of the catch-up stream to CP `cp`, answered like
   * {@link sendCpPart}; counted as sent into `wire.baselineBytes` or
   * `wire.resyncBytes` by `kind`.
   */
  sendCatchUpPart(
    cp: number,
    part: number,
    last: boolean,
    bytes: Uint8Array,
    kind: CatchUpKind,
  ): Promise<CpPartAnswer>;
  /** Releases what it holds open (a log stream); a later handshake may open it again. */
  close?(): void;
}

/**
 * Available policy: a CP deferred while the link stays up is followed by a
 * handshake whenever the destination lacks it, also when it is more than one
 * CP behind (then the handshake judges a resync). Found by the simulator
 * (`deno task sim --seed 43 --trial 54`): a handshake that found the
 * destination one CP behind marked that CP to be sent again while the next
 * CP was being committed; that CP's commit replaced the mark (the store owes
 * one sync at a time), was deferred (the destination two CPs behind), and no
 * handshake followed: the pair stayed out of sync for good on an idle link.
 *
 * @module
 */
import assert from "node:assert/strict";
import { RefsyncError } from "../../../src/errors/mod.ts";
import type { CpPartAnswer } from "../../../src/edge-source/mirror/replica-client.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import type { CatchUpBegin, DestState } from "../../../src/protocol/handshake/mod.ts";
import { advance, settle } from "../../support/sim-time.ts";
import { withTempDir } from "../../storage/helpers.ts";
import { FakeDest, inSyncState, unreachable, withFakeMirror } from "./fake-dest.ts";

/** A destination whose CP syncs can fail, which can stay at one CP, and whose handshakes can wait. */
class StalledDest extends FakeDest {
  /** What its handshake says it holds (null: our CP). */
  frozen: DestState | null = null;
  cpFails = false;
  /** A handshake waits for it while set. */
  gate: Promise<void> | null = null;
  readonly catchUps: CatchUpBegin[] = [];

  override async state(): Promise<DestState> {
    if (this.gate) await this.gate;
    const state = await super.state();
    return this.frozen ? { ...this.frozen, lastLsn: state.lastLsn } : state;
  }

  override sendCpPart(_cp: number, _part: number, last: boolean): Promise<CpPartAnswer> {
    if (this.cpFails) return Promise.reject(unreachable());
    return Promise.resolve({ status: last ? 200 : 202 });
  }

  override beginCatchUp(body: CatchUpBegin): Promise<never> {
    this.catchUps.push(body);
    return Promise.reject(new RefsyncError("conflict", "no catch-up here"));
  }
}

Deno.test("mirror (available): a CP deferred while the destination is two CPs behind on a link that stayed up is followed by a resync", async () => {
  await withTempDir(async (dir) => {
    const dest = new StalledDest();
    let opened: (() => void) | null = null;
    const logger = createLogger({ level: "error", sink: () => {} });
    await withFakeMirror(dir, dest, {
      policy: "available",
      logger,
      hooks: (hooks) => ({
        ...hooks,
        // Between a CP's look at the sync it owes and its commit: the handshake waiting at the
        // gate answers then (as it raced the CP in the simulator).
        mirrorHolds: async (lsn) => {
          opened?.();
          await settle();
          return await hooks.mirrorHolds(lsn);
        },
      }),
    }, async ({ mirror, store, sim }) => {
      const cp = async () => {
        const running = store.checkpoint(true);
        await advance(sim, 100);
        return (await running)!.superblock.cp;
      };
      assert.equal(await cp(), 1);
      assert.equal(
        mirror.stats().mirror && (mirror.stats().mirror as { destinationCp: number }).destinationCp,
        1,
      );
      // The destination stays at CP 1 and stops committing CP syncs; the link stays up.
      dest.frozen = inSyncState(store, store.log.lastLsn);
      dest.cpFails = true;
      dest.gate = new Promise((resolve) => opened = resolve);
      // CP 2 is deferred: the handshake that resends it waits at the gate...
      assert.equal(await cp(), 2);
      // ... until CP 3 is being committed: it marks CP 2 owed, which CP 3's commit replaces.
      assert.equal(await cp(), 3);
      dest.gate = null;
      await advance(sim, 5000);
      // This fake refuses it: the handshake asks again after its backoff, the same resync.
      assert.deepEqual(
        [...new Set(dest.catchUps.map((c) => `${c.baseCp} -> ${c.targetCp}`))],
        ["1 -> 3"],
        "a resync from the destination's CP to ours",
      );
    });
  });
});

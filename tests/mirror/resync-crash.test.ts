/**
 * A resync survives a SIGKILL of either side (real processes, issue 10 "Must
 * show": SIGKILL during a resync). The destination's data directory is copied
 * at a CP, the pair goes on in sync with 80 MiB, and the old copy is put back
 * (its log lacks those records, which the source dropped: the resync must
 * send their blocks, as after a restore from an old backup). The resync
 * from that CP by the walk by birth CP is slowed by the proxy, so it is seen
 * running; at 30% one side is SIGKILLed and restarted: the resync resumes
 * where the destination's durable progress is, completes, and has sent at
 * most 1.15x its walk in all (a walk that is the changed data, not the
 * volume); after a CP the digests are equal and every object reads back from
 * both sides.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ApplianceProcess } from "../support/appliance.ts";
import { objectUrl } from "../support/http.ts";
import { Model } from "../support/model.ts";
import { type Prng, testSeed } from "../support/prng.ts";
import { untilDone } from "./catch-up.ts";
import { callJson, logEvents, untilState } from "./pair.ts";
import {
  assertHealed,
  type ProxiedPair,
  resyncFromOldCopy,
  wireOf,
  withProxiedPair,
} from "./proxied-pair.ts";

const MiB = 1024 * 1024;
/**
 * Objects of 2 MiB written while the destination's old copy is away: 80 MiB, so that
 * what a kill may cost again stays within the 15%: the parts in flight (4
 * MiB each; a dead source's last bytes still drain from its socket into the
 * destination) and what the destination had not yet made durable (it does
 * every 4 MiB of the walk).
 */
const CHANGED_OBJECTS = 40;

/** A resync from an old copy of the destination (see {@link resyncFromOldCopy}), 30% done. */
async function resyncRunning(pair: ProxiedPair, model: Model, rng: Prng): Promise<number> {
  pair.proxy.delayMs = 2; // the resync takes seconds
  const changed = await resyncFromOldCopy(pair, model, rng, CHANGED_OBJECTS, 2 * MiB);
  const at = await untilDone(pair.src, 0.3);
  assert.equal(at.kind, "resync");
  return changed;
}

/** The one resync `src` committed: its walk's bytes (the changed data and the metadata over it). */
function committedResync(src: ApplianceProcess, changed: number): number {
  const committed = logEvents(src, "mirror.catch_up_committed");
  assert.deepEqual(committed.map((l) => l.kind), ["resync"], src.stderr.slice(-4000));
  const walk = committed[0].imageBytes as number;
  assert.ok(walk <= 1.1 * changed + 512 * 1024, `a walk of ${walk} bytes for ${changed} changed`);
  return walk;
}

Deno.test("resync crash: the destination SIGKILLed at 30% of a resync; it resumes, 1.15x at most", async () => {
  await withProxiedPair("resync-dest-crash", testSeed(0x7e5c_c001), [], async (pair, rng) => {
    const model = new Model();
    const changed = await resyncRunning(pair, model, rng);
    await pair.dst.kill();
    await pair.restartDest();
    // Back up, it still knows its image is incomplete.
    const read = await callJson(objectUrl(pair.dst.url, "before"));
    assert.equal(read.status, 503, read.text);
    await untilState(pair.src, "in-sync", 90_000);
    pair.proxy.delayMs = 0;
    const walk = committedResync(pair.src, changed);
    // The source stayed up: its counter has every byte of the resync it sent.
    const sent = (await wireOf(pair.src)).resyncBytes;
    assert.ok(sent <= 1.15 * walk, `the resync sent ${sent} bytes in all for a walk of ${walk}`);
    await assertHealed(pair, model, "after the resumed resync");
  });
});

Deno.test("resync crash: the source SIGKILLed at 30% of a resync; it resumes after its restart, 1.15x at most", async () => {
  await withProxiedPair("resync-source-crash", testSeed(0x7e5c_c002), [], async (pair, rng) => {
    const model = new Model();
    const changed = await resyncRunning(pair, model, rng);
    await pair.src.kill();
    await pair.restartSource();
    await untilState(pair.src, "in-sync", 90_000);
    pair.proxy.delayMs = 0;
    const walk = committedResync(pair.src, changed);
    const resumed = logEvents(pair.src, "mirror.catch_up_resumed");
    assert.equal(
      resumed.length,
      1,
      "the restarted source resumes the resync the destination records",
    );
    assert.ok((resumed[0].doneBytes as number) > 0, "after what the destination made durable");
    // The destination stayed up: its counter has every byte of the resync it received.
    const got = (await wireOf(pair.dst)).resyncBytes;
    assert.ok(got <= 1.15 * walk, `the resync took ${got} bytes in all for a walk of ${walk}`);
    await assertHealed(pair, model, "after the resumed resync");
  });
});

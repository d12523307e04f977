/**
 * The simulator: `deno task sim` prints the same bytes for the same seed (a
 * seed replays the interleaving), and CI runs 200 of its trials, every one
 * of which must hold every check, and which together must forward
 * references (records and blocks named, damaged, forged) for those checks
 * to mean something.
 */
import assert from "node:assert/strict";
import type { ForwardCounts } from "../../sim/forwarding.ts";
import { runTrial } from "../../sim/trial.ts";
import { seeded } from "../support/prng.ts";

const MAIN = new URL("../../sim/main.ts", import.meta.url).pathname;

async function sim(args: string[]): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("sim: the same seed prints the same bytes; the last line counts the trials", async () => {
  const args = ["--seed", "3", "--trials", "6", "--verbose"];
  const [a, b] = [await sim(args), await sim(args)];
  assert.equal(a.code, 0, a.stdout);
  assert.equal(a.stdout, b.stdout);
  const lines = a.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 7, a.stdout);
  assert.equal(lines[6], "6 trials, 0 failures, seed 3");
  const other = await sim(["--seed", "4", "--trials", "6", "--verbose"]);
  assert.notEqual(other.stdout, a.stdout, "another seed is another run");
});

Deno.test(
  "sim: 200 trials hold every check, and forward references under their faults",
  seeded(7, async (seed) => {
    const failures: string[] = [];
    const forwarded: ForwardCounts[] = [];
    for (let t = 0; t < 200; t++) {
      const { failure, forwarded: f } = await runTrial(seed, t);
      forwarded.push(f);
      if (failure) {
        failures.push(
          `trial ${t}: step ${failure.step}: ${failure.what} (deno task sim --seed ${seed} --trial ${t})`,
        );
      }
    }
    // The checks of the forwarding path's references are only as good as the references the
    // trials send: dedup that silently stopped (or a workload that stopped repeating) fails here.
    const trials = (has: (f: ForwardCounts) => boolean) => forwarded.filter(has).length;
    const sum = (of: (f: ForwardCounts) => number) => forwarded.reduce((n, f) => n + of(f), 0);
    assert.ok(trials((f) => f.refFrames > 0) >= 100, "reference frames in half the trials");
    assert.ok(trials((f) => f.logPieces > 0) >= 50, "records named in a quarter of them");
    assert.ok(trials((f) => f.blockPieces > 0) >= 50, "blocks named in a quarter of them");
    assert.ok(trials((f) => f.logShiftedBlocks > 0) >= 15, "moved blocks named in some of them");
    assert.ok(
      trials((f) => f.logBatchesOverlapped > 0) >= 50,
      "batches sent before the one before was answered (the log stream's window) in a quarter",
    );
    assert.ok(sum((f) => f.logRefBytes) > 0, "bytes saved");
    // Damage aimed at what references name, and forged references, are refused: the
    // destination asks for the bytes.
    assert.ok(sum((f) => f.missed) >= 50, "references missed");
    assert.ok(sum((f) => f.forged - f.forgedAcked) >= 50, "forged references refused");
    assert.deepEqual(failures, []);
  }),
);

/**
 * Trials of other seeds that found a defect, each fixed: they replay it on every run, as they were
 * found (those found before moved content or the simulated log stream without them).
 */
const FOUND: Array<
  { seed: number; trial: number; defect: string; moves?: false; stream?: false }
> = [
  {
    seed: 1,
    trial: 78,
    stream: false,
    defect:
      "available: a destination several CPs behind on a link that stayed up was never resynced",
  },
  {
    seed: 11,
    trial: 3,
    stream: false,
    defect:
      "strict: a destination replaced while the pair was idle got the next CP's sync (refused) for good, never a baseline",
  },
  {
    seed: 21,
    trial: 71,
    stream: false,
    defect:
      "a destination replaced while the link stayed up answered a reference frame it could not resolve with LSN 0: sent again and again, never a handshake",
  },
  {
    seed: 6,
    trial: 74,
    stream: false,
    moves: false, // found before moved content, which it draws now: replayed as found (--no-moves)
    defect:
      "the simulator's own: undoing a flip before a promotion damaged a block written again since (its byte matched)",
  },
  {
    seed: 43,
    trial: 54,
    stream: false,
    defect:
      "available: a CP committed while a handshake marked the one before owed replaced that mark; deferred two CPs ahead, no handshake followed",
  },
  {
    seed: 63,
    trial: 38,
    stream: false,
    defect:
      "the simulator's own: a CP sent to the destination while its promotion was unanswered failed the trial on its 409",
  },
  {
    seed: 63,
    trial: 60,
    stream: false,
    defect:
      "the simulator's own: a bit flip aimed at the destination's committed blocks walked a tree a catch-up was overwriting",
  },
  {
    seed: 71,
    trial: 2,
    stream: false,
    moves: false, // found before moved content, which it draws now: replayed as found (--no-moves)
    defect:
      "a destination replaced while the pair stayed idle was reported in sync at CP 0 for good: nothing asked it",
  },
  {
    seed: 11,
    trial: 118,
    defect:
      "a source fenced after its batch reached the destination (the answer lost in the failover) refused its writers with 403; the promoted side served the write",
  },
  {
    seed: 53,
    trial: 213,
    defect:
      "an empty destination behind a source at CP 1 whose CP 0 slot a torn CP had taken was refused for good; the idle source never made the CP that would have changed that",
  },
  {
    seed: 239,
    trial: 51,
    defect:
      "two log batches received at once (an old stream's last and the new one's first): the earlier answered for the later's records before they were durable",
  },
  {
    seed: 397,
    trial: 182,
    defect:
      "the simulator's own: a destination promoted before it received the log its source had acknowledged alone (a baseline's start) was expected to hold it; and the source reported in sync meanwhile",
  },
];

Deno.test("sim: the trials that found defects hold every check", async () => {
  for (const { seed, trial, defect, moves, stream } of FOUND) {
    const { failure } = await runTrial(seed, trial, { moves, stream });
    assert.equal(
      failure && `step ${failure.step}: ${failure.what}`,
      null,
      `seed ${seed} trial ${trial} (${defect})`,
    );
  }
});

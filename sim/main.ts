/**
 * `deno task sim --seed S --trials N [--trial K] [--steps M] [--no-moves] [--no-stream]`:
 * runs N seeded trials of a simulated pair in this process (or only trial K
 * of seed S, to replay it; `--no-moves`: without moved content, `--no-stream`:
 * log batches as HTTP requests only, as trials found before either were). Prints one line per failing trial — its seed, step, what broke
 * and the command that replays it — and a last line
 * `N trials, F failures, seed S`. Exits 1 when a trial failed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runTrial } from "./trial.ts";

const USAGE =
  "usage: deno task sim --seed S --trials N [--trial K] [--steps M] [--no-moves] [--no-stream] [--verbose]";

function int(text: unknown, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`sim: --${name} must be a non-negative integer\n${USAGE}`);
    Deno.exit(2);
  }
  return n;
}

let args: Record<string, string | boolean | undefined>;
try {
  const flag = { type: "string" } as const;
  args = parseArgs({
    args: Deno.args,
    options: {
      seed: flag,
      trials: flag,
      trial: flag,
      steps: flag,
      "no-moves": { type: "boolean" },
      "no-stream": { type: "boolean" },
      verbose: { type: "boolean" },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  console.error(`sim: ${e instanceof Error ? e.message : e}\n${USAGE}`);
  Deno.exit(2);
}
const seed = int(args.seed, "seed", 1);
const trials = int(args.trials, "trials", 100);
const only = args.trial === undefined ? null : int(args.trial, "trial", 0);
const steps = int(args.steps, "steps", 60);

let failures = 0;
let count = 0;
for (let t = only ?? 0; t < (only === null ? trials : only + 1); t++) {
  count++;
  const summary = await runTrial(seed, t, {
    steps,
    moves: args["no-moves"] ? false : undefined,
    stream: args["no-stream"] ? false : undefined,
  });
  if (args.verbose) {
    const { writes: w, reads, crashes, flips, refused, promoted, cp, digest, simulatedMs } =
      summary;
    const { baseline, resync } = summary.catchUps;
    const f = summary.forwarded;
    const life = `${summary.policy}${summary.start === "baseline" ? ", baseline" : ""}${
      summary.replaced ? `, destination replaced ${summary.replaced}x` : ""
    }; ${baseline} baselines, ${resync} resyncs`;
    console.log(
      `trial ${t} (${life}): writes ${w.applied} acknowledged (${summary.outOfSync} out of ` +
        `sync), ${w.maybe} in doubt, ${w.not} refused; ${reads} reads ` +
        `(${summary.initializingReads} refused initializing); ${crashes} crashes; ` +
        `${flips} bits flipped, ${refused} blocks asked for as DATA${
          promoted ? "; promoted" : ""
        }` +
        `${summary.promoteRefused ? `; ${summary.promoteRefused} promotions refused` : ""}; ` +
        `forwarded ${f.refFrames} reference frames (${f.logPieces} records and ${f.blockPieces} ` +
        `blocks named, ${f.logRefBytes} bytes saved), ${f.missed} references missed${
          f.forged ? `, ${f.forged} forged (${f.forgedAcked} rebuilt all the same)` : ""
        }; CP ${cp} ${digest.slice(0, 16)}; ${simulatedMs} ms simulated`,
    );
  }
  const failure = summary.failure;
  if (failure === null) continue;
  failures++;
  const replay = `deno task sim --seed ${seed} --trial ${t}${
    steps === 60 ? "" : ` --steps ${steps}`
  }${args["no-moves"] ? " --no-moves" : ""}${args["no-stream"] ? " --no-stream" : ""}`;
  console.log(
    `trial ${t} (seed ${seed}): step ${failure.step}: ${failure.what}; replay: ${replay}`,
  );
}
console.log(`${count} trials, ${failures} failures, seed ${seed}`);
Deno.exit(failures === 0 ? 0 : 1);

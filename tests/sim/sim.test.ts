/**
 * The simulator: `deno task sim` prints the same bytes for the same seed (a
 * seed replays the interleaving), and CI runs 200 of its trials, every one
 * of which must hold every check.
 */
import assert from "node:assert/strict";
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
  "sim: 200 trials hold every check",
  seeded(7, async (seed) => {
    const failures: string[] = [];
    for (let t = 0; t < 200; t++) {
      const { failure } = await runTrial(seed, t);
      if (failure) {
        failures.push(
          `trial ${t}: step ${failure.step}: ${failure.what} (deno task sim --seed ${seed} --trial ${t})`,
        );
      }
    }
    assert.deepEqual(failures, []);
  }),
);

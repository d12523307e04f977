/** deadline(): the work's outcome when it comes in time, else the late error; no timer left behind. */
import assert from "node:assert/strict";
import { deadline, systemClock } from "../../src/runtime/clock.ts";

Deno.test("deadline: the work's value or error in time; the late error (and its side effect) past it", async () => {
  assert.equal(await deadline(Promise.resolve(7), 1000, () => new Error("late")), 7);
  await assert.rejects(
    deadline(Promise.reject(new Error("own")), 1000, () => new Error("late")),
    /own/,
  );
  let stopped = false;
  const never = new Promise<number>(() => {});
  await assert.rejects(
    deadline(never, 20, () => {
      stopped = true;
      return new Error("no answer within 20 ms");
    }, systemClock),
    /no answer within 20 ms/,
  );
  assert.ok(stopped, "late() ran");
});

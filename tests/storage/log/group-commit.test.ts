import assert from "node:assert/strict";
import { GroupCommit } from "../../../src/storage/log/group-commit.ts";

/** A sync whose rounds the test finishes by hand. */
function manualSync() {
  const rounds: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const sync = () => new Promise<void>((resolve, reject) => rounds.push({ resolve, reject }));
  return { rounds, sync };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("GroupCommit: same-task requests share a round; requests during a round queue for the next", async () => {
  const { rounds, sync } = manualSync();
  const gc = new GroupCommit(sync);
  const done: string[] = [];
  const a = gc.request().then(() => done.push("a"));
  const b = gc.request().then(() => done.push("b"));
  await tick();
  assert.equal(rounds.length, 1, "a and b share the first round");
  const c = gc.request().then(() => done.push("c"));
  const d = gc.request().then(() => done.push("d"));
  await tick();
  assert.equal(rounds.length, 1, "c and d wait: a sync started before them cannot cover them");
  rounds[0].resolve();
  await Promise.all([a, b]);
  assert.deepEqual(done, ["a", "b"]);
  await tick();
  assert.equal(rounds.length, 2, "one round for c and d together");
  rounds[1].resolve();
  await Promise.all([c, d]);
  await gc.idle();
  assert.equal(gc.rounds, 2);
});

Deno.test("GroupCommit: a failed round rejects exactly its requests", async () => {
  const { rounds, sync } = manualSync();
  const gc = new GroupCommit(sync);
  const a = gc.request();
  await tick();
  const b = gc.request();
  rounds[0].reject(new Error("EIO"));
  await assert.rejects(a, /EIO/);
  await tick();
  rounds[1].resolve();
  await b;
  // A request nobody awaits does not surface as an unhandled rejection.
  gc.request();
  await tick();
  rounds[2].reject(new Error("EIO again"));
  await gc.idle();
});

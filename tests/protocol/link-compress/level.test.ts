/**
 * The link's level policy: level 1 on a fast link, up a level at a time while
 * the link is the bottleneck, back down when compressing is, each level judged
 * by what it measured, never more than one change per dwell.
 */
import assert from "node:assert/strict";
import {
  DWELL_MS,
  type Level,
  LevelPolicy,
  STALE_MS,
} from "../../../src/protocol/link-compress/level.ts";

const MiB = 1 << 20;

/** A link and CPU: `speeds` (raw MiB/s) and `ratios` per level, `mibps` the link (Infinity: local). */
interface World {
  speeds: Record<Level, number>;
  ratios: Record<Level, number>;
  mibps: number;
}

/** Runs `policy` through `seconds` of 2 MiB batches in `world` from `start`; the levels it used. */
function run(policy: LevelPolicy, world: World, start: number, seconds: number): Level[] {
  const used: Level[] = [];
  for (let t = start; t < start + seconds * 1000; t += 250) {
    const level = policy.decide(t);
    if (used[used.length - 1] !== level) used.push(level);
    const raw = 2 * MiB;
    const wire = raw * world.ratios[level];
    policy.compressed(level, raw, wire, (raw / MiB / world.speeds[level]) * 1000, t);
    policy.received(wire, Number.isFinite(world.mibps) ? (wire / MiB / world.mibps) * 1000 : 0);
  }
  return used;
}

const files = {
  speeds: { 1: 260, 3: 230, 6: 110 },
  ratios: { 1: 0.47, 3: 0.42, 6: 0.3 },
} as const;

Deno.test("level policy: a fast link keeps level 1 (no change, ever)", () => {
  const policy = new LevelPolicy();
  assert.deepEqual(run(policy, { ...files, mibps: Infinity }, 0, 120), [1]);
  assert.equal(policy.bandwidth, Infinity);
});

Deno.test("level policy: a slow link climbs a level per dwell to the one that moves bytes fastest", () => {
  const policy = new LevelPolicy();
  // 10 MiB/s: level 1 takes 1/260 + 0.47/10 s per MiB, level 6 1/110 + 0.30/10: 6 is best.
  const used = run(policy, { ...files, mibps: 10 }, 0, 60);
  assert.deepEqual(used, [1, 3, 6]);
  assert.equal(policy.level, 6);
  assert.ok(Math.abs(policy.bandwidth! - 10 * MiB / 1000) < 1, `bandwidth ${policy.bandwidth}`);
});

Deno.test("level policy: a level that measures worse than the one before is left for it", () => {
  const policy = new LevelPolicy();
  // Level 6 here compresses no better than 3 and is slow: tried, then left for 3.
  const world: World = {
    speeds: { 1: 260, 3: 230, 6: 40 },
    ratios: { 1: 0.47, 3: 0.42, 6: 0.41 },
    mibps: 10,
  };
  assert.deepEqual(run(policy, world, 0, 60), [1, 3, 6, 3]);
  // Measured, both stay known: no more tries of 6 until its measure is stale.
  assert.deepEqual(run(policy, world, 60_000, (STALE_MS - 60_000) / 1000 - 20), [3]);
  assert.deepEqual(run(policy, world, STALE_MS, 40), [3, 6, 3]);
});

Deno.test("level policy: when compressing becomes the bottleneck it steps back down", () => {
  const policy = new LevelPolicy();
  assert.deepEqual(run(policy, { ...files, mibps: 10 }, 0, 40), [1, 3, 6]);
  // The link got fast: compressing at 6 now takes longest, and level 1, measured a while ago,
  // is the best known: straight back to it.
  assert.deepEqual(run(policy, { ...files, mibps: Infinity }, 40_000, 60), [6, 1]);
  // Known levels gone stale, and a CPU too busy to compress at 6 (as fast as the link carries):
  // down a level at a time, each tried again.
  const busy = new LevelPolicy();
  assert.deepEqual(run(busy, { ...files, mibps: 10 }, 0, 40), [1, 3, 6]);
  const slowCpu: World = { speeds: { 1: 12, 3: 10, 6: 3 }, ratios: files.ratios, mibps: 10 };
  assert.deepEqual(run(busy, slowCpu, 40_000 + STALE_MS, 40), [6, 3, 1]);
});

Deno.test("level policy: at most one change per dwell, and none before the link was timed", () => {
  const policy = new LevelPolicy();
  policy.compressed(1, 2 * MiB, MiB, 8, 0);
  assert.equal(policy.decide(DWELL_MS * 2), 1, "no bandwidth yet: nothing to judge by");
  policy.received(MiB, 1000); // 1 MiB/s
  policy.received(1000, 1000); // too small to time: ignored
  assert.equal(policy.bandwidth, MiB / 1000);
  assert.equal(policy.decide(DWELL_MS - 1), 1, "within the first dwell");
  assert.equal(policy.decide(DWELL_MS), 3);
  policy.compressed(3, 2 * MiB, 0.9 * MiB, 9, DWELL_MS);
  assert.equal(policy.decide(2 * DWELL_MS - 1), 3, "within the dwell after a change");
  assert.equal(policy.decide(2 * DWELL_MS), 6);
});

Deno.test("level policy: bodies slowed by a busy CPU now and then do not make a fast link slow", () => {
  const policy = new LevelPolicy();
  for (let t = 0; t < 60_000; t += 250) {
    assert.equal(policy.decide(t), 1, `at ${t} ms`);
    policy.compressed(1, 2 * MiB, MiB, 8, t);
    // Most bodies arrive at 1 GiB/s; every third one waits 100 ms for a scheduler.
    policy.received(MiB, t % 750 === 0 ? 100 : 1);
  }
  assert.equal(policy.bandwidth, MiB);
});

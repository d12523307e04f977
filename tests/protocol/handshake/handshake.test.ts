/**
 * The handshake verdict (judgePairing): every pairing a CP sync could not
 * bridge is refused with its reason, a promotion fences, and the two pairings
 * that work are accepted.
 */
import assert from "node:assert/strict";
import {
  type DestState,
  divergentTailAfter,
  judgePairing,
  type LocalCp,
} from "../../../src/protocol/handshake/mod.ts";

const local: LocalCp = {
  volumeId: "11".repeat(16),
  pairGeneration: 1,
  cp: 5,
  volumeDigest: "55".repeat(32),
  previousDigest: "44".repeat(32),
};
const atOurCp: DestState = {
  volumeId: local.volumeId,
  pairGeneration: 1,
  cp: 5,
  volumeDigest: local.volumeDigest,
  lsnCovered: 90,
  firstLsn: 80,
  lastLsn: 100,
  promoted: false,
  promotedAtLsn: null,
  catchUp: null,
};

Deno.test("handshake: the destination at our CP or the one before is accepted", () => {
  assert.deepEqual(judgePairing(atOurCp, local), { kind: "ok", resendLastCp: false });
  const behind = { ...atOurCp, cp: 4, volumeDigest: local.previousDigest! };
  assert.deepEqual(judgePairing(behind, local), { kind: "ok", resendLastCp: true });
  // A fresh destination (CP 0) of a fresh source: its own random volume id does not matter.
  const fresh = { ...atOurCp, volumeId: "99".repeat(16), cp: 0, volumeDigest: "00".repeat(32) };
  const start = { ...local, cp: 0, volumeDigest: "00".repeat(32), previousDigest: null };
  assert.deepEqual(judgePairing(fresh, start), { kind: "ok", resendLastCp: false });
});

Deno.test("handshake: a promoted destination fences, keeping the log up to its promotion", () => {
  const promoted = { ...atOurCp, pairGeneration: 2, promoted: true, promotedAtLsn: 97 };
  const v = judgePairing(promoted, local);
  assert.equal(v.kind, "fenced");
  assert.equal(v.kind === "fenced" && v.keepLsn, 97);
  assert.match(
    v.kind === "fenced" ? v.reason : "",
    /promoted \(pair generation 2 > ours 1, at LSN 97\)/,
  );
  // Restarted as a destination, or promoted twice since: fenced, the promotion point unknown.
  for (const dest of [{ ...promoted, promoted: false }, { ...promoted, pairGeneration: 3 }]) {
    const again = judgePairing(dest, local);
    assert.equal(again.kind, "fenced");
    assert.equal(again.kind === "fenced" && again.keepLsn, dest.pairGeneration === 2 ? 97 : 0);
  }
});

Deno.test("handshake: every pairing a CP sync could not bridge is refused with its reason", () => {
  const cases: Array<[string, Partial<DestState>, Partial<LocalCp>, RegExp]> = [
    ["another volume", { volumeId: "22".repeat(16) }, {}, /another volume/],
    ["an older pair generation", {}, { pairGeneration: 2 }, /pair generation 1, this source 2/],
    ["a destination ahead", { cp: 6 }, {}, /at CP 6 and this source at CP 5/],
    ["diverged at our CP", { volumeDigest: "66".repeat(32) }, {}, /diverged at CP 5/],
    ["diverged at the CP before", { cp: 4 }, {}, /diverged at CP 4/],
    ["the CP before is gone", { cp: 4 }, { previousDigest: null }, /no longer on this source/],
  ];
  for (const [what, dest, ours, why] of cases) {
    const v = judgePairing({ ...atOurCp, ...dest }, { ...local, ...ours });
    assert.equal(v.kind, "refused", what);
    assert.match(v.kind === "refused" ? v.reason : "", why, what);
  }
});

Deno.test("handshake: an empty destination gets a baseline, one further behind a resync", () => {
  const empty = {
    ...atOurCp,
    volumeId: "99".repeat(16),
    cp: 0,
    volumeDigest: "00".repeat(32),
    firstLsn: 1,
    lastLsn: 0,
  };
  assert.deepEqual(judgePairing(empty, local), { kind: "catchUp", baseCp: 0, resume: false });
  // Also with a log: a pair under the available policy whose first CPs were all deferred (the
  // destination went away before one synced) was refused for good (sim seed 7 trial 70).
  assert.deepEqual(judgePairing({ ...empty, lastLsn: 3 }, local), {
    kind: "catchUp",
    baseCp: 0,
    resume: false,
  });
  // A source at CP 1 still syncs that CP to an empty destination the usual way...
  const atOne = { ...local, cp: 1, previousDigest: "00".repeat(32) };
  assert.deepEqual(judgePairing(empty, atOne), { kind: "ok", resendLastCp: true });
  // ...and gives it a baseline when its CP 0 is gone (a torn CP 2 took its slot): it was refused
  // for good, and an idle source never made the CP that would have changed that (sim seed 53
  // trial 213).
  const baseline = { kind: "catchUp", baseCp: 0, resume: false };
  assert.deepEqual(judgePairing(empty, { ...atOne, previousDigest: null }), baseline);
  // Its CP 0 of another image (a destination's own empty one is ours): a baseline, not a refusal.
  assert.deepEqual(judgePairing(empty, { ...atOne, previousDigest: "77".repeat(32) }), baseline);
  assert.deepEqual(judgePairing({ ...atOurCp, cp: 3 }, local), {
    kind: "catchUp",
    baseCp: 3,
    resume: false,
  });
  // Another volume's CP is never overwritten by a catch-up.
  const other = judgePairing({ ...atOurCp, cp: 3, volumeId: "22".repeat(16) }, local);
  assert.equal(other.kind, "refused");
});

Deno.test("handshake: a recorded catch-up resumes when its target is our CP, else restarts", () => {
  const catchUp = {
    baseCp: 0,
    targetCp: 5,
    targetDigest: local.volumeDigest,
    blocksDone: 9,
    bytesDone: 9 * 4096,
  };
  const dest = { ...atOurCp, cp: 0, volumeId: "99".repeat(16), catchUp };
  assert.deepEqual(judgePairing(dest, local), { kind: "catchUp", baseCp: 0, resume: true });
  assert.deepEqual(judgePairing(dest, { ...local, cp: 7 }), {
    kind: "catchUp",
    baseCp: 0,
    resume: false,
  });
  const ahead = judgePairing({ ...dest, catchUp: { ...catchUp, targetCp: 9 } }, local);
  assert.equal(ahead.kind, "refused");
});

/** B, promoted from CP 4 (digest 44..) at LSN 97, now at CP 7 of pair generation 2. */
const promotedSource: LocalCp = {
  ...local,
  pairGeneration: 2,
  cp: 7,
  volumeDigest: "77".repeat(32),
  previousDigest: "66".repeat(32),
  promotedAtLsn: 97,
  promotedFromCp: 4,
  promotedFromDigest: "44".repeat(32),
};
/** A, the old source, rejoining (`refsync dest --rejoin`): committed CP 4 of generation 1. */
const rejoining: DestState = {
  ...atOurCp,
  cp: 4,
  volumeDigest: "44".repeat(32),
  rejoin: { fromGeneration: 1, previousCp: 3, previousDigest: "33".repeat(32) },
};

Deno.test("handshake: a rejoining old source holding the promotion's CP is resynced from it", () => {
  assert.deepEqual(judgePairing(rejoining, promotedSource), {
    kind: "catchUp",
    baseCp: 4,
    resume: false,
  });
  // It committed a CP the promoted side never got: the shared one is its previous CP.
  const ahead: DestState = {
    ...rejoining,
    cp: 5,
    volumeDigest: "5a".repeat(32),
    rejoin: { fromGeneration: 1, previousCp: 4, previousDigest: "44".repeat(32) },
  };
  assert.deepEqual(judgePairing(ahead, promotedSource), {
    kind: "catchUp",
    baseCp: 4,
    resume: false,
  });
  // Its first catch-up from us is recorded: resumed when its target is our CP.
  const catching = {
    ...rejoining,
    catchUp: { baseCp: 4, targetCp: 7, targetDigest: "77".repeat(32), blocksDone: 9, bytesDone: 1 },
  };
  assert.deepEqual(judgePairing(catching, promotedSource), {
    kind: "catchUp",
    baseCp: 4,
    resume: true,
  });
});

Deno.test("handshake: a rejoining old source that does not hold the promotion's CP gets a baseline", () => {
  const cases: Array<[string, Partial<DestState>, Partial<LocalCp>]> = [
    ["the same CP number, another digest", { volumeDigest: "4f".repeat(32) }, {}],
    ["two CPs ahead", {
      cp: 6,
      volumeDigest: "6f".repeat(32),
      rejoin: { fromGeneration: 1, previousCp: 5, previousDigest: "5f".repeat(32) },
    }, {}],
    ["a previous CP no longer held", {
      cp: 5,
      volumeDigest: "5f".repeat(32),
      rejoin: { fromGeneration: 1, previousCp: null, previousDigest: null },
    }, {}],
    ["the promotion's CP unknown (an old volume)", {}, { promotedFromCp: 0 }],
  ];
  for (const [what, dest, ours] of cases) {
    assert.deepEqual(
      judgePairing({ ...rejoining, ...dest }, { ...promotedSource, ...ours }),
      { kind: "catchUp", baseCp: 0, resume: false },
      what,
    );
  }
  // Another volume is never overwritten, rejoining or not: a misdirected URL wipes nothing.
  const other = judgePairing({ ...rejoining, volumeId: "22".repeat(16) }, promotedSource);
  assert.equal(other.kind, "refused");
  assert.match(other.kind === "refused" ? other.reason : "", /another volume.*unrelated/);
});

Deno.test("handshake: an old source not rejoining is refused as before", () => {
  const v = judgePairing({ ...rejoining, rejoin: null }, promotedSource);
  assert.equal(v.kind, "refused");
  assert.match(
    v.kind === "refused" ? v.reason : "",
    /pair generation 1, this source 2: it is the other side of a promotion/,
  );
  // A rejoin mark of the same generation is an ordinary destination (its catch-up committed).
  const same = { ...rejoining, pairGeneration: 2, cp: 6, volumeDigest: "66".repeat(32) };
  assert.deepEqual(judgePairing(same, promotedSource), { kind: "ok", resendLastCp: true });
});

Deno.test("handshake: a rejoining destination's tail above our promotion LSN is set aside once, before its first catch-up", () => {
  assert.equal(divergentTailAfter({ ...rejoining, lastLsn: 100 }, promotedSource), 97);
  assert.equal(divergentTailAfter({ ...rejoining, lastLsn: 97 }, promotedSource), null);
  assert.equal(divergentTailAfter({ ...rejoining, lastLsn: 90 }, promotedSource), null);
  // Once its catch-up from us is recorded, its log above 97 is what we forwarded: ours.
  const catching = {
    ...rejoining,
    lastLsn: 130,
    catchUp: { baseCp: 4, targetCp: 7, targetDigest: "77".repeat(32), blocksDone: 0, bytesDone: 0 },
  };
  assert.equal(divergentTailAfter(catching, promotedSource), null);
  // Not rejoining, or no longer behind us: nothing is set aside.
  assert.equal(
    divergentTailAfter({ ...rejoining, rejoin: null, lastLsn: 100 }, promotedSource),
    null,
  );
  assert.equal(
    divergentTailAfter({ ...rejoining, pairGeneration: 2, lastLsn: 100 }, promotedSource),
    null,
  );
});

/**
 * Dedup on the forwarding path, on a real store and a fake destination that
 * holds what the source holds (its volume at our CP, the log it was sent):
 * which pieces the source names, and that they rebuild the frame it logged
 * (resolved against the source's own storage, as the destination would).
 *
 * - the CP window: while our next CP is being synced, the destination still
 *   holds the one before, and its blocks (that CP did not write) are named
 *   (they used to go as bytes until the destination committed);
 * - a tail or small payload the destination holds: a PREFIX of its volume
 *   block, or a LOG piece of that many bytes while it holds the record;
 * - a destination that does not read format 2 (`refFormat` absent) gets no PREFIX;
 * - blocks moved off the 4 KiB grid (an insertion before them) are named
 *   where they landed, unless their held copy changed or the data looks random.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { CpPartAnswer } from "../../../src/edge-source/mirror/replica-client.ts";
import { resolveRefFrame } from "../../../src/edge-dest/ref-resolver.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import {
  isWholeFrame,
  type RefFrame,
  type WireFrame,
} from "../../../src/protocol/log-frame/mod.ts";
import type { ObjectStore } from "../../../src/storage/objects/store.ts";
import { Prng } from "../../../src/runtime/random.ts";
import { advance } from "../../support/sim-time.ts";
import { bytesStream, withTempDir } from "../../storage/helpers.ts";
import { text } from "../../support/text.ts";
import { concatBytes } from "../../../src/bytes/mod.ts";
import { FakeDest, type FakeMirror, withFakeMirror } from "./fake-dest.ts";

/** A {@link FakeDest} that keeps every frame and takes CP syncs, which wait while held. */
class HoldingDest extends FakeDest {
  /** Every frame received, by LSN (the last one sent for it). */
  readonly frames = new Map<number, WireFrame>();
  #hold: PromiseWithResolvers<void> | null = null;

  override received(f: WireFrame): void {
    this.frames.set(f.header.lsn, f);
  }

  /** CP syncs wait from now until {@link release}. */
  hold(): void {
    this.#hold = Promise.withResolvers();
  }

  release(): void {
    this.#hold?.resolve();
    this.#hold = null;
  }

  override async sendCpPart(_cp: number, _part: number, last: boolean): Promise<CpPartAnswer> {
    await this.#hold?.promise;
    return { status: last ? 200 : 202 };
  }
}

interface Ctx extends FakeMirror {
  dest: HoldingDest;
  /** PUTs `bytes` to `key` and resolves with what the destination got for its record. */
  put(key: string, bytes: Uint8Array): Promise<WireFrame>;
  /** Runs a CP to its end (the destination commits it unless held). */
  cp(): Promise<void>;
}

function withMirror(refFormat: number | undefined, fn: (ctx: Ctx) => Promise<void>) {
  return withTempDir(async (dir) => {
    const dest = new HoldingDest();
    dest.refFormat = refFormat;
    const logger = createLogger({ level: "error" });
    await withFakeMirror(dir, dest, { policy: "strict", logger }, async (m) => {
      const { store, sim } = m;
      const put = async (key: string, bytes: Uint8Array) => {
        const written = store.write(key, bytesStream(bytes), { replace: true, offset: 0 });
        await advance(sim, 10);
        assert.equal((await written).mirrored, true);
        return dest.frames.get(store.log.lastLsn)!;
      };
      const cp = async () => {
        const done = store.checkpoint();
        await advance(sim, 10);
        await done;
      };
      try {
        await fn({ ...m, dest, put, cp });
      } finally {
        dest.release();
      }
    });
  });
}

/** The pieces' kinds of a reference frame (a whole frame: "whole"). */
function kinds(f: WireFrame): string[] {
  return isWholeFrame(f) ? ["whole"] : f.pieces.map((p) => p.kind);
}

/** The reference frame rebuilds, from what the destination holds, exactly the frame logged. */
function assertRebuilds(store: ObjectStore, f: WireFrame): void {
  assert.ok(!isWholeFrame(f), "a reference frame");
  const rebuilt = resolveRefFrame(store, f as RefFrame);
  assert.notEqual(typeof rebuilt, "string", `it resolves: ${rebuilt}`);
  const logged = store.log.readFrames(f.header.lsn, 1 << 21);
  assert.deepEqual(
    (rebuilt as { bytes: Uint8Array }).bytes,
    logged.subarray(0, f.header.frameLength),
  );
}

const BLOCK = 4096;

Deno.test("frame dedup: while our CP is synced, blocks and tails of the destination's CP are named", async () => {
  await withMirror(2, async ({ store, dest, sim, put, cp }) => {
    const rng = new Prng(5);
    const object = rng.fill(new Uint8Array(3 * BLOCK + 1000));
    assert.deepEqual(kinds(await put("first", object)), ["whole"]);
    await cp();
    await put("other", rng.fill(new Uint8Array(BLOCK)));
    dest.hold();
    const syncing = store.checkpoint();
    await advance(sim, 10);
    assert.equal(store.superblock.cp, 2, "our CP 2 is committed, its sync held");
    const f = await put("copy", object);
    assert.deepEqual(kinds(f), ["block", "block", "block", "prefix"]);
    assertRebuilds(store, f);
    dest.release();
    await advance(sim, 10);
    await syncing;
  });
});

Deno.test("frame dedup: small payloads and tails the destination holds go as PREFIX or LOG pieces", async () => {
  await withMirror(2, async ({ store, put, cp }) => {
    const rng = new Prng(6);
    const small = rng.fill(new Uint8Array(1500));
    const tail = rng.fill(new Uint8Array(700));
    const withTail = (seed: number) => {
      const bytes = new Uint8Array(2 * BLOCK + tail.length);
      new Prng(seed).fill(bytes.subarray(0, 2 * BLOCK));
      bytes.set(tail, 2 * BLOCK);
      return bytes;
    };
    assert.deepEqual(kinds(await put("small/1", small)), ["whole"]);
    const first = store.log.lastLsn;
    assert.deepEqual(kinds(await put("tail/1", withTail(1))), ["whole"]);
    const tailLsn = store.log.lastLsn;

    // In the destination's log: the same small payload, and another object ending the same way.
    const again = await put("small/2", small);
    assert.deepEqual((again as RefFrame).pieces, [{
      kind: "log",
      lsn: first,
      payloadOffset: 0,
      length: 1500,
    }]);
    const f = await put("tail/2", withTail(2));
    assert.deepEqual(kinds(f), ["bytes", "log"]);
    assert.deepEqual((f as RefFrame).pieces[1], {
      kind: "log",
      lsn: tailLsn,
      payloadOffset: 2 * BLOCK,
      length: tail.length,
    });
    assertRebuilds(store, f);

    // After a CP that log counts as dropped: the first bytes of its volume blocks.
    await cp();
    const p = await put("small/3", small);
    assert.deepEqual(kinds(p), ["prefix"]);
    assertRebuilds(store, p);
    const t = await put("tail/3", withTail(3));
    assert.deepEqual(kinds(t), ["bytes", "prefix"]);
    assertRebuilds(store, t);
  });
});

Deno.test("frame dedup: a destination whose handshake names no refFormat gets no PREFIX", async () => {
  await withMirror(undefined, async ({ store, put, cp }) => {
    const rng = new Prng(7);
    const object = rng.fill(new Uint8Array(2 * BLOCK + 900));
    await put("a", object);
    await cp();
    const f = await put("b", object);
    assert.deepEqual(kinds(f), ["block", "block", "bytes"]);
    assertRebuilds(store, f);
    assert.deepEqual(kinds(await put("c", object.subarray(2 * BLOCK))), ["whole"]);
  });
});

Deno.test("frame dedup: blocks moved off the 4 KiB grid are named where they landed", async () => {
  await withMirror(2, async ({ mirror, store, put, cp }) => {
    const object = text(8, 8 * BLOCK + 500);
    assert.deepEqual(kinds(await put("first", object)), ["whole"]);
    // Still in the destination's log: its record's bytes, a LOG piece per run.
    const moved = concatBytes([text(9, 100), object]);
    const inLog = await put("moved/1", moved);
    assert.deepEqual(kinds(inLog), ["bytes", "log", "bytes"]);
    assertRebuilds(store, inLog);
    assert.equal(mirror.wire.logShiftedBlocks, 8);

    // In its committed CP: a BLOCK piece each.
    await cp();
    const f = await put("moved/2", concatBytes([text(10, 1234), object]));
    assert.deepEqual(kinds(f), ["bytes", ...Array(8).fill("block"), "bytes"]);
    assertRebuilds(store, f);
    assert.equal(mirror.wire.logShiftedBlocks, 16);

    // Random content is not searched: moved, it goes whole.
    const random = new Prng(11).fill(new Uint8Array(8 * BLOCK));
    await put("random/1", random);
    await cp();
    assert.deepEqual(kinds(await put("random/2", concatBytes([text(12, 10), random]))), ["whole"]);
    assert.equal(mirror.wire.logShiftedBlocks, 16);
  });
});

Deno.test("frame dedup: a moved block whose held copy changed is sent as bytes", async () => {
  await withMirror(2, async ({ mirror, put, cp }) => {
    const object = text(13, 6 * BLOCK);
    await put("first", object);
    await cp();
    // The object is replaced: its blocks are no longer live in the CP the destination holds.
    await put("first", text(14, 6 * BLOCK));
    await cp();
    const f = await put("moved", concatBytes([text(15, 300), object]));
    assert.deepEqual(kinds(f), ["whole"]);
    assert.equal(mirror.wire.logShiftedBlocks, 0);
  });
});

Deno.test("frame dedup: of two held blocks that a moved block's anchors and sketch both match, the one with its bytes is named", async () => {
  await withMirror(2, async ({ mirror, store, put, cp }) => {
    const b = text(16, 8 * BLOCK);
    const a = b.slice();
    for (let k = 0; k < 8; k++) a[k * BLOCK + 2000] ^= 1; // the same keys and sketches, not bytes
    await put("b", b);
    await put("a", a); // indexed last: its blocks are the first candidates
    await cp();
    const f = await put("moved-b", concatBytes([text(17, 500), b]));
    assert.deepEqual(kinds(f), ["bytes", ...Array(8).fill("block")]);
    assertRebuilds(store, f);
    assert.equal(mirror.wire.logShiftedBlocks, 8);
  });
});

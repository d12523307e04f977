/**
 * The link's zstd level follows the link (issue 11: "the level follows the
 * measured link and CPU"): on a local link the pair keeps level 1; through a
 * proxy that carries 1 MiB/s the source raises it, as the destination's
 * receive times show the link is what holds the writes back, and every byte
 * still arrives: the digests are equal after the CP.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Model } from "../support/model.ts";
import { testSeed } from "../support/prng.ts";
import { DWELL_MS } from "../../src/protocol/link-compress/level.ts";
import { assertHealed, put, wireOf, withProxiedPair, wordText } from "./proxied-pair.ts";

Deno.test("link level: a 1 MiB/s link raises the zstd level; a fast one keeps 1", async () => {
  await withProxiedPair("link-level", testSeed(0x11f_0101), [], async (pair, rng) => {
    const model = new Model();
    const load = async (tag: string, ms: number, until: () => Promise<boolean>) => {
      const deadline = performance.now() + ms;
      for (let i = 0; performance.now() < deadline && i < 1000; i++) {
        const a = await put(pair.src, model, `${tag}/${i}`, wordText(rng, 400_000));
        assert.equal(a.status, 201, a.text);
        if (await until()) return;
      }
    };
    // Fast: past a dwell, still level 1.
    await load("fast", DWELL_MS + 2000, () => Promise.resolve(false));
    assert.equal((await wireOf(pair.src)).linkLevel, 1, "a local link keeps level 1");
    // Slow: the level rises within a dwell or two of it.
    pair.proxy.upBytesPerSecond = 1 << 20;
    await load("slow", 3 * DWELL_MS, async () => (await wireOf(pair.src)).linkLevel > 1);
    const level = (await wireOf(pair.src)).linkLevel;
    assert.ok(level > 1, `the level stayed ${level} on a 1 MiB/s link`);
    pair.proxy.upBytesPerSecond = 0;
    await assertHealed(pair, model, `at level ${level}`);
  });
});

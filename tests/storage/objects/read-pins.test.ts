/**
 * A reader pins the CP it reads, and that pin must always end: with the
 * stream, its cancel, or — for a stream nobody pulls (a HEAD that opened a
 * body, a stalled or vanished client) — after `readIdleMs`, logged, the
 * stream erroring if pulled later. A pin that holds back reclamation longer
 * than `pinWarnMs` is logged.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { sleep } from "../../support/timeout.ts";
import { bytesStream, drain, Prng, seeded, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const MiB = 1 << 20;
/** The test object: two read chunks. */
const SIZE = 2 * MiB;
/** Blocks of one version of the test object. */
const OBJECT_BLOCKS = SIZE / 4096;

/** The store's reader events (`store.*`); CP events are not what these tests watch. */
function capture(): {
  lines: Array<Record<string, unknown>>;
  logger: ReturnType<typeof createLogger>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const sink = (l: string) => {
    const line = JSON.parse(l);
    if (String(line.event).startsWith("store.")) lines.push(line);
  };
  return { lines, logger: createLogger({ level: "debug", sink }) };
}

async function overwriteAndCp(store: ObjectStore, rng: Prng, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await store.write("a", bytesStream(rng.bytes(SIZE)), { replace: true, offset: 0 });
    await store.checkpoint();
  }
}

Deno.test(
  "read pins: a stream never pulled releases its CP after readIdleMs, logged",
  seeded(0x9171, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const log = capture();
      const store = await ObjectStore.open(dir, {
        ...STORE_OPTS,
        // Long enough that the CPs below finish while the stream is still pinned, even on a
        // loaded machine; the release is then awaited (bounded).
        readIdleMs: 3000,
        logger: log.logger,
      });
      try {
        await overwriteAndCp(store, rng, 2);
        const start = store.superblock.blockCount;
        const abandoned = store.read("a", 0, MiB);
        // While it is pinned, what the CPs replace cannot be reused: the volume grows.
        await overwriteAndCp(store, rng, 3);
        const pinned = store.superblock.blockCount;
        assert.ok(
          pinned - start >= 2 * OBJECT_BLOCKS,
          `pinned: the volume grew by ${pinned - start} blocks`,
        );
        for (let i = 0; i < 300 && log.lines.length === 0; i++) await sleep(50);
        const line = log.lines.find((l) => l.event === "store.read_abandoned");
        assert.ok(line, `the release is logged: ${JSON.stringify(log.lines)}`);
        assert.equal(line.level, "warn");
        assert.equal(line.key, "a");
        // Released: the next CPs reuse the freed blocks.
        await overwriteAndCp(store, rng, 4);
        const after = store.superblock.blockCount;
        assert.ok(after - pinned < OBJECT_BLOCKS, `released: grew by ${after - pinned} blocks`);
        // Pulled after the release, it cannot serve bytes that may have been reused.
        await assert.rejects(drain(abandoned), (e) => isError(e, "request_timeout"));
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "read pins: streams that end or are cancelled release at once",
  seeded(0x9172, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const log = capture();
      // A long idle bound: any release seen here is the stream's own.
      const store = await ObjectStore.open(dir, {
        ...STORE_OPTS,
        readIdleMs: 60_000,
        logger: log.logger,
      });
      try {
        await overwriteAndCp(store, rng, 2);
        const start = store.superblock.blockCount;
        for (let i = 0; i < 4; i++) {
          assert.equal((await drain(store.read("a", 0, SIZE))).length, SIZE); // read to the end
          await store.read("a", 0, MiB).cancel(); // cancelled before a byte
          const r = store.read("a", 0, SIZE).getReader(); // cancelled midway
          await r.read();
          await r.cancel();
          // Exactly Content-Length: a consumer that stops at the last byte never pulls `done`.
          const exact = store.read("a", 0, 4096).getReader();
          assert.equal((await exact.read()).value?.length, 4096);
          exact.releaseLock();
          await overwriteAndCp(store, rng, 1);
        }
        const grown = store.superblock.blockCount - start;
        assert.ok(grown < OBJECT_BLOCKS, `no reader held a CP: the volume grew by ${grown} blocks`);
        assert.equal(log.lines.length, 0, `nothing was abandoned: ${JSON.stringify(log.lines)}`);
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "read pins: a reader holding back reclamation past pinWarnMs is logged once",
  seeded(0x9173, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const log = capture();
      const store = await ObjectStore.open(dir, {
        ...STORE_OPTS,
        readIdleMs: 60_000,
        pinWarnMs: 1000,
        logger: log.logger,
      });
      try {
        await overwriteAndCp(store, rng, 1);
        const reader = store.read("a", 0, MiB / 2).getReader();
        await overwriteAndCp(store, rng, 1);
        assert.equal(log.lines.length, 0, "a young pin is not news");
        await sleep(1100);
        await overwriteAndCp(store, rng, 2);
        const held = log.lines.filter((l) => l.event === "store.pin_held");
        assert.equal(held.length, 1, JSON.stringify(log.lines));
        assert.equal(held[0].level, "warn");
        assert.equal(held[0].key, "a");
        assert.ok((held[0].ageMs as number) >= 1000);
        await reader.cancel();
      } finally {
        await store.close();
      }
    });
  }),
);

Deno.test(
  "read pins: closing the store ends open streams (they error, no timer stays)",
  seeded(0x9174, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const store = await ObjectStore.open(dir, { ...STORE_OPTS, readIdleMs: 60_000 });
      await overwriteAndCp(store, rng, 1);
      const open = store.read("a", 0, MiB);
      await store.close();
      await assert.rejects(drain(open), (e) => isError(e, "request_timeout"));
    });
  }),
);

/**
 * Preconditions of writes and deletes are decided by the store when it
 * applies them: a refused write or delete changes nothing (also after a
 * reopen, which replays the log), and of two racing create-only writes
 * exactly one wins.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError, RefsyncError } from "../../../src/errors/mod.ts";
import type { ObjectInfo, Precondition } from "../../../src/storage/objects/store.ts";
import { bytesStream, drain, etagHex, Prng, seeded, withTempDir } from "../helpers.ts";
import { StoreModel } from "../store_model.ts";

const MiB = 1 << 20;

const createOnly: Precondition = (current) => {
  if (current !== null) throw new RefsyncError("precondition_failed", "exists");
};

function ifMatch(etag: string): Precondition {
  return (current) => {
    if (current?.etag !== etag) throw new RefsyncError("precondition_failed", "ETag differs");
  };
}

/** A body that sends nothing until `open()`; then all of `data`. */
function gated(data: Uint8Array): { body: ReadableStream<Uint8Array>; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const rest = bytesStream(data).getReader();
  return {
    open,
    body: new ReadableStream<Uint8Array>({
      async pull(controller) {
        await gate;
        const next = await rest.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    }, { highWaterMark: 0 }),
  };
}

for (const size of [1000, 2 * MiB + 5]) {
  Deno.test(
    `preconditions: two racing create-only writes of ${size} bytes, exactly one wins`,
    seeded(0x1f00 + size, async (seed) => {
      const rng = new Prng(seed);
      await withTempDir(async (dir) => {
        const m = await new StoreModel(dir).open();
        try {
          const a = rng.bytes(size);
          const b = rng.bytes(size);
          const ga = gated(a);
          const gb = gated(b);
          // Both pass the early check (nothing is there yet) and wait for their bodies.
          const wa = m.store.write("k", ga.body, {
            replace: true,
            offset: 0,
            precondition: createOnly,
          });
          const wb = m.store.write("k", gb.body, {
            replace: true,
            offset: 0,
            precondition: createOnly,
          });
          ga.open();
          gb.open();
          const [ra, rb] = await Promise.allSettled([wa, wb]);
          const won = [ra, rb].filter((r) => r.status === "fulfilled");
          const lost = [ra, rb].filter((r) => r.status === "rejected");
          assert.equal(won.length, 1, "exactly one create-only write wins");
          assert.ok(isError((lost[0] as PromiseRejectedResult).reason, "precondition_failed"));
          const winner = ra.status === "fulfilled" ? a : b;
          assert.equal(
            (won[0] as PromiseFulfilledResult<{ created: boolean }>).value.created,
            true,
          );
          assert.deepEqual(await drain(m.store.read("k", 0, size)), winner);
          await m.reopen(); // replay must not apply the loser either
          assert.deepEqual(await drain(m.store.read("k", 0, size)), winner);
        } finally {
          await m.close();
        }
      });
    }),
  );
}

Deno.test(
  "preconditions: a refused whole or ranged write and a refused delete change nothing",
  seeded(0x1f01, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const m = await new StoreModel(dir).open();
      try {
        const v1 = rng.bytes(3 * MiB + 7);
        await m.put("k", v1);
        const etag = m.store.stat("k")!.etag;
        const stale = ifMatch("0".repeat(64));
        for (const size of [10, 3 * MiB]) {
          await assert.rejects(
            m.store.write("k", bytesStream(rng.bytes(size)), {
              replace: true,
              offset: 0,
              precondition: stale,
            }),
            (e) => isError(e, "precondition_failed"),
          );
          await assert.rejects(
            m.store.write("k", bytesStream(rng.bytes(size)), {
              replace: false,
              offset: 100,
              length: size,
              precondition: stale,
            }),
            (e) => isError(e, "precondition_failed"),
          );
        }
        await assert.rejects(
          m.store.delete("k", { precondition: stale }),
          (e) => isError(e, "precondition_failed"),
        );
        const check = async (when: string) => {
          assert.equal(m.store.stat("k")?.etag, etag, `${when}: the ETag is the same`);
          assert.deepEqual(await drain(m.store.read("k", 0, v1.length)), v1, `${when}: same bytes`);
        };
        await check("after the refusals");
        await m.store.checkpoint();
        await m.reopen();
        await check("after a CP and a reopen");
        // The right ETag passes; the delete of a missing object is null, whatever its precondition.
        assert.notEqual(await m.store.delete("k", { precondition: ifMatch(etag) }), null);
        assert.equal(await m.store.delete("k", { precondition: stale }), null);
      } finally {
        await m.close();
      }
    });
  }),
);

Deno.test(
  "preconditions: they see the current object, its ETag computed after ranged writes",
  seeded(0x1f02, async (seed) => {
    const rng = new Prng(seed);
    await withTempDir(async (dir) => {
      const m = await new StoreModel(dir).open();
      try {
        await m.put("k", rng.bytes(5000));
        await m.writeAt("k", 4000, rng.bytes(2000)); // ETag unknown until computed
        const before = etagHex(m.bytes("k")!);
        const seen: Array<ObjectInfo | null> = [];
        await m.store.write("k", bytesStream(rng.bytes(10)), {
          replace: false,
          offset: 0,
          length: 10,
          precondition: (current) => {
            seen.push(current && { ...current });
          },
        });
        assert.equal(seen.length, 2, "checked before the body and at the apply");
        assert.equal(seen[0]!.size, 6000);
        assert.equal(seen[0]!.etag, before, "the ETag of the bytes before the write");
        assert.equal(seen[1]!.etag, before);
      } finally {
        await m.close();
      }
    });
  }),
);

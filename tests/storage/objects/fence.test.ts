/**
 * The store's side of a fencing, in process: a CP commits locally only once
 * the mirror holds its records (`mirrorHolds`), and `fence()` sets the log
 * tail above the kept LSN aside — copied to a quarantine segment, cut from
 * the log, gone from reads, lists and recovery — and refuses every later
 * write before it is logged.
 */
import assert from "node:assert/strict";
import { RefsyncError } from "../../../src/errors/mod.ts";
import { NvLog } from "../../../src/storage/log/mod.ts";
import { ObjectStore } from "../../../src/storage/objects/store.ts";
import { drain, withTempDir } from "../helpers.ts";
import { STORE_OPTS } from "../store_model.ts";

const text = (s: string) => ReadableStream.from([new TextEncoder().encode(s)]);

async function put(store: ObjectStore, key: string, body: string): Promise<number> {
  return (await store.write(key, text(body), { replace: true, offset: 0 })).lsn;
}

async function readText(store: ObjectStore, key: string): Promise<string | null> {
  const info = store.stat(key);
  if (info === null) return null;
  return new TextDecoder().decode(await drain(store.read(key, 0, info.size)));
}

Deno.test("store: a CP commits only once the mirror holds its records", async () => {
  await withTempDir(async (dir) => {
    let holds: (lsn: number) => Promise<void> = () =>
      Promise.reject(new RefsyncError("unavailable", "the mirror does not confirm"));
    const asked: number[] = [];
    const store = await ObjectStore.open(dir, {
      ...STORE_OPTS,
      mirrorHolds: (lsn) => {
        asked.push(lsn);
        return holds(lsn);
      },
    });
    try {
      const lsn = await put(store, "a", "one");
      await assert.rejects(store.checkpoint(), /does not confirm/);
      assert.deepEqual(asked, [lsn], "the CP asks for the last record it holds");
      assert.equal(store.superblock.cp, 0, "nothing committed without the mirror");
      assert.equal(await readText(store, "a"), "one", "the abandoned CP's writes stay readable");
      holds = () => Promise.resolve();
      await store.checkpoint();
      assert.equal(store.superblock.cp, 1);
      assert.equal(store.superblock.lsnCovered, lsn);
    } finally {
      await store.close();
    }
  });
});

Deno.test("store: fence() sets the unacknowledged tail aside and refuses every later write", async () => {
  await withTempDir(async (dir) => {
    let store = await ObjectStore.open(dir, STORE_OPTS);
    try {
      await put(store, "in/cp", "committed");
      await store.checkpoint();
      const kept = await put(store, "in/log", "acknowledged");
      await put(store, "tail/new", "never acknowledged");
      await put(store, "in/cp", "an unacknowledged overwrite");
      const last = store.log.lastLsn;

      const aside = await store.fence("promoted", kept, `${dir}/quarantine`);
      assert.deepEqual(aside, {
        file: `${dir}/quarantine/${(kept + 1).toString(16).padStart(16, "0")}.seg`,
        firstLsn: kept + 1,
        lastLsn: last,
      });
      const check = async (when: string) => {
        assert.equal(await readText(store, "tail/new"), null, `${when}: tail/new`);
        assert.equal(await readText(store, "in/cp"), "committed", `${when}: in/cp`);
        assert.equal(await readText(store, "in/log"), "acknowledged", `${when}: in/log`);
        const keys = store.list({ limit: 10 }).objects.map((o) => o.key);
        assert.deepEqual(keys, ["in/cp", "in/log"], `${when}: listed`);
        assert.equal(store.log.lastLsn, kept, `${when}: the log ends at the kept LSN`);
      };
      await check("fenced");
      await assert.rejects(
        put(store, "refused", "x"),
        (e) => e instanceof RefsyncError && e.code === "fenced" && /promoted/.test(e.message),
      );
      assert.equal(store.log.lastLsn, kept, "a refused write is not logged");

      // The quarantine segment holds the frames set aside, readable as a log.
      const q = await NvLog.open(`${dir}/quarantine`, { create: false });
      try {
        const keys = [...q.records()].map((r) => `${r.header.lsn}:${r.header.key}`);
        assert.deepEqual(keys, [`${kept + 1}:tail/new`, `${kept + 2}:in/cp`]);
      } finally {
        await q.close();
      }

      await store.close();
      store = await ObjectStore.open(dir, STORE_OPTS);
      await check("reopened");
    } finally {
      await store.close();
    }
  });
});

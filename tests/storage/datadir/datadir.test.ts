/**
 * The data directory's lock and role (`src/storage/datadir`), and how the
 * store uses them: one store per directory, a directory keeps its role, and a
 * promotion's raised pair generation survives a crash between the role write
 * and the promotion's CP.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { createLogger } from "../../../src/logging/mod.ts";
import { DataDir } from "../../../src/storage/datadir/mod.ts";
import { ObjectStore, type StoreOptions } from "../../../src/storage/objects/store.ts";
import { withTempDir } from "../helpers.ts";

const SOURCE: StoreOptions = { cpDirtyBytes: 1 << 20, maxObjectBytes: 1 << 30 };
const DEST: StoreOptions = { ...SOURCE, mirror: true };

function body(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([new TextEncoder().encode(text)]);
}

async function readText(store: ObjectStore, key: string): Promise<string> {
  const size = store.stat(key)!.size;
  return await new Response(store.read(key, 0, size)).text();
}

Deno.test("datadir: a second store on an open directory is refused with this process's pid", async () => {
  await withTempDir(async (dir) => {
    const first = await ObjectStore.open(dir, SOURCE);
    try {
      await first.write("a", body("first"), { replace: true, offset: 0 });
      await assert.rejects(
        () => ObjectStore.open(dir, SOURCE),
        (e: unknown) =>
          isError(e, "conflict") && e.details?.pid === Deno.pid &&
          e.message.startsWith(`${dir} is in use by another process (pid ${Deno.pid}`),
      );
      assert.equal(Deno.readTextFileSync(`${dir}/lock`), `${Deno.pid}\n`);
      // The refused open touched nothing: the first store goes on.
      await first.write("b", body("second"), { replace: true, offset: 0 });
      await first.checkpoint();
      assert.equal(await readText(first, "a"), "first");
    } finally {
      await first.close();
    }
    // Closed: the directory is free again.
    const again = await ObjectStore.open(dir, SOURCE);
    try {
      assert.equal(await readText(again, "b"), "second");
    } finally {
      await again.close();
    }
  });
});

Deno.test("datadir: the role is recorded at creation and a store of the other role is refused", async () => {
  await withTempDir(async (dir) => {
    await (await ObjectStore.open(`${dir}/d`, DEST)).close();
    const role = JSON.parse(Deno.readTextFileSync(`${dir}/d/role`));
    assert.equal(role.role, "destination");
    await assert.rejects(
      () => ObjectStore.open(`${dir}/d`, SOURCE),
      (e: unknown) =>
        isError(e, "conflict") &&
        e.message ===
          `${dir}/d holds a destination's data; start it with \`refsync dest --data ${dir}/d\``,
    );
    await (await ObjectStore.open(`${dir}/s`, SOURCE)).close();
    await assert.rejects(
      () => ObjectStore.open(`${dir}/s`, DEST),
      (e: unknown) =>
        isError(e, "conflict") &&
        e.message ===
          `${dir}/s holds a source's data; start it with \`refsync source --data ${dir}/s\`, ` +
            "or, to make it the destination of the side promoted over it (a failback: its " +
            `divergent log is set aside), \`refsync dest --data ${dir}/s --rejoin\``,
    );
    // A refusal releases the lock: the right role opens at once.
    await (await ObjectStore.open(`${dir}/d`, DEST)).close();
    Deno.writeTextFileSync(`${dir}/s/role`, "garbage");
    await assert.rejects(
      () => ObjectStore.open(`${dir}/s`, SOURCE),
      (e: unknown) => isError(e, "conflict") && e.message.includes(`${dir}/s/role is damaged`),
    );
  });
});

Deno.test("datadir: a promoted destination is a source; it names the promotion when started as a destination", async () => {
  await withTempDir(async (dir) => {
    const lines: string[] = [];
    const logger = createLogger({ level: "info", sink: (l) => lines.push(l) });
    const dest = await ObjectStore.open(dir, { ...DEST, logger });
    try {
      await dest.promote();
      assert.equal(dest.superblock.pairGeneration, 2);
    } finally {
      await dest.close();
    }
    const role = JSON.parse(Deno.readTextFileSync(`${dir}/role`));
    assert.equal(role.role, "source");
    assert.equal(role.pairGeneration, 2);
    const promotion = lines.map((l) => JSON.parse(l)).find((l) => l.event === "promotion");
    assert.equal(promotion?.level, "info");
    assert.equal(promotion?.pairGeneration, 2);
    assert.equal(promotion?.cp, 1);
    await assert.rejects(
      () => ObjectStore.open(dir, DEST),
      (e: unknown) =>
        isError(e, "conflict") &&
        e.message.startsWith(
          `${dir} was promoted to a source on ${role.promotedAt}; start it with \`refsync source --data ${dir}\`, or`,
        ),
    );
    const source = await ObjectStore.open(dir, SOURCE);
    try {
      await source.write("a", body("after the promotion"), { replace: true, offset: 0 });
      await source.checkpoint();
      assert.equal(source.superblock.pairGeneration, 2, "a restart keeps the generation");
    } finally {
      await source.close();
    }
  });
});

Deno.test("datadir: a crash after the promotion's role write and before its CP still raises the generation", async () => {
  await withTempDir(async (dir) => {
    await (await ObjectStore.open(dir, DEST)).close();
    // The state a crash leaves between DataDir.promote and the promotion's CP commit.
    const held = DataDir.open(dir, { role: "destination" });
    held.promote(2);
    held.close();
    const source = await ObjectStore.open(dir, SOURCE);
    try {
      assert.equal(source.superblock.pairGeneration, 1, "no CP committed the promotion yet");
      await source.checkpoint(true);
      assert.equal(source.superblock.pairGeneration, 2, "the first CP commits the promotion");
    } finally {
      await source.close();
    }
  });
});

Deno.test("store log: cp.committed is a debug line with the CP's numbers; a failing CP warns once per cause", async () => {
  await withTempDir(async (dir) => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: "debug", sink: (l) => lines.push(JSON.parse(l)) });
    let failSync = false;
    const store = await ObjectStore.open(dir, {
      ...SOURCE,
      logger,
      syncCheckpoint: () =>
        failSync
          ? Promise.reject(new Error("destination unreachable"))
          : Promise.resolve("synced" as const),
    });
    try {
      await store.write("a", body("x".repeat(5000)), { replace: true, offset: 0 });
      await store.checkpoint();
      const committed = lines.find((l) => l.event === "cp.committed");
      assert.equal(committed?.level, "debug");
      assert.equal(committed?.cp, 1);
      // Two data blocks of "x" (5000 bytes), the catalog leaf.
      assert.deepEqual(committed?.bytes, { data: 8192, meta: 4096 });
      assert.equal(typeof committed?.durationMs, "number");
      failSync = true;
      await store.write("b", body("y"), { replace: true, offset: 0 });
      for (let i = 0; i < 3; i++) await assert.rejects(() => store.checkpoint());
      const failed = lines.filter((l) => l.event === "cp.failed");
      assert.deepEqual(failed.map((l) => l.level), ["warn", "debug", "debug"]);
      assert.equal(failed[0].cause, "destination unreachable");
      failSync = false;
      await store.checkpoint();
    } finally {
      await store.close();
    }
  });
});

Deno.test("datadir: --rejoin turns a source's directory into a rejoining destination, its data kept", async () => {
  await withTempDir(async (dir) => {
    const source = await ObjectStore.open(dir, SOURCE);
    try {
      await source.write("a", body("the old source's"), { replace: true, offset: 0 });
      await source.checkpoint();
    } finally {
      await source.close();
    }
    const created = JSON.parse(Deno.readTextFileSync(`${dir}/role`)).created;
    // Without --rejoin a source's directory stays refused as a destination.
    await assert.rejects(() => ObjectStore.open(dir, DEST), (e: unknown) => isError(e, "conflict"));
    const dest = await ObjectStore.open(dir, { ...DEST, rejoin: true });
    try {
      assert.equal(dest.isMirror, true);
      assert.equal(dest.rejoin?.fromGeneration, 1);
      assert.equal(dest.superblock.cp, 1, "its volume is kept");
      assert.equal(await readText(dest, "a"), "the old source's");
    } finally {
      await dest.close();
    }
    const role = JSON.parse(Deno.readTextFileSync(`${dir}/role`));
    assert.equal(role.role, "destination");
    assert.equal(role.created, created);
    assert.equal(role.rejoin.fromGeneration, 1);
    assert.ok(!Number.isNaN(Date.parse(role.rejoin.at)));
    // Durable: a restart without the flag is the rejoining destination still, never a source.
    const again = await ObjectStore.open(dir, DEST);
    try {
      assert.equal(again.rejoin?.fromGeneration, 1);
    } finally {
      await again.close();
    }
    await assert.rejects(
      () => ObjectStore.open(dir, SOURCE),
      (e: unknown) => isError(e, "conflict"),
    );
    // On a destination's directory --rejoin changes nothing.
    await (await ObjectStore.open(`${dir}/d`, DEST)).close();
    const plain = await ObjectStore.open(`${dir}/d`, { ...DEST, rejoin: true });
    try {
      assert.equal(plain.rejoin, null);
    } finally {
      await plain.close();
    }
  });
});

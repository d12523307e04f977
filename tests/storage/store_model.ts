/**
 * A model of the object store for the storage tests: a Map of key -> bytes
 * (ranged writes as the shared reference model applies them:
 * tests/support/model.ts) next to a real {@link ObjectStore} in a temp directory, with operations that
 * apply to both and a `verify` that checks every object (bytes through `read`,
 * size, ETag against npm:blake3-wasm) and the `list` output (order, prefix,
 * start-after pagination, `next`).
 *
 * @module
 */
import { compareUtf8 } from "../support/bytes.ts";
import assert from "node:assert/strict";
import { RefsyncError } from "../../src/errors/mod.ts";
import { ObjectStore, type StoreOptions } from "../../src/storage/objects/store.ts";
import type { CpTransaction } from "../../src/storage/volume/volume.ts";
import { assertBytes, bytesStream, drain, etagHex, type Prng } from "./helpers.ts";
import { objectBytes, writeRange } from "../../sim/model.ts";

export { objectBytes };

/** Store options of the tests: no automatic CP (the tests take them), small log segments. */
export const STORE_OPTS: StoreOptions = {
  cpDirtyBytes: 1 << 30,
  maxObjectBytes: 8 << 20,
  logSegmentBytes: 4 << 20,
};

/** Keys whose UTF-8 order differs from JS string order, with shared prefixes. */
export const KEYS = [
  "a",
  "a/1",
  "a/2",
  "a/b/c",
  "A",
  "b",
  "b0",
  "a b",
  "é",
  "日本/x",
  "\uff01wide", // U+FF01: UTF-8 EF BC 81, sorts before U+1F600 in bytes, after it in UTF-16
  "😀/emoji",
  "z".repeat(300),
];

/** Prefixes to list by. */
export const PREFIXES = ["", "a", "a/", "b", "日本/", "😀", "zz", "nothing"];

interface Entry {
  bytes: Uint8Array;
  etag: string;
}

/** The store and its model. */
export class StoreModel {
  store!: ObjectStore;
  readonly objects = new Map<string, Entry>();
  readonly dir: string;
  readonly options: StoreOptions;

  constructor(dir: string, options: StoreOptions = STORE_OPTS) {
    this.dir = dir;
    this.options = options;
  }

  async open(): Promise<this> {
    this.store = await ObjectStore.open(this.dir, this.options);
    return this;
  }

  /** Close and reopen: recovery by superblock + log replay. */
  async reopen(): Promise<void> {
    await this.store.close();
    this.store = await ObjectStore.open(this.dir, this.options);
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  bytes(key: string): Uint8Array | undefined {
    return this.objects.get(key)?.bytes;
  }

  #set(key: string, bytes: Uint8Array): void {
    this.objects.set(key, { bytes, etag: etagHex(bytes) });
  }

  /** Whole PUT of `data`, sent in chunks of `chunk` bytes. */
  async put(key: string, data: Uint8Array, chunk = 256 << 10): Promise<void> {
    const existed = this.objects.has(key);
    const r = await this.store.write(key, bytesStream(data, chunk), { replace: true, offset: 0 });
    this.#set(key, data.slice());
    assert.equal(r.key, key);
    assert.equal(r.size, data.length, `PUT ${key}: size`);
    assert.equal(r.etag, this.objects.get(key)!.etag, `PUT ${key}: etag`);
    assert.equal(r.created, !existed, `PUT ${key}: created`);
    assert.ok(r.lsn > 0);
  }

  /** Ranged write of `data` at `offset` (with or without an announced length). */
  async writeAt(
    key: string,
    offset: number,
    data: Uint8Array,
    opts: { chunk?: number; announce?: boolean } = {},
  ): Promise<void> {
    const old = this.objects.get(key)?.bytes;
    const r = await this.store.write(key, bytesStream(data, opts.chunk ?? 256 << 10), {
      replace: false,
      offset,
      length: opts.announce === false ? undefined : data.length,
    });
    const next = writeRange(old, offset, data);
    const existed = this.objects.has(key);
    this.#set(key, next);
    assert.equal(r.size, next.length, `write ${key}@${offset}+${data.length}: size`);
    assert.equal(r.etag, null, "a ranged write answers no ETag");
    assert.equal(r.created, !existed, `write ${key}: created`);
  }

  async del(key: string): Promise<void> {
    const r = await this.store.delete(key);
    assert.equal(r !== null, this.objects.has(key), `DELETE ${key}`);
    this.objects.delete(key);
  }

  /** Reads `[start, end)` of `key` and compares it with the model. */
  async checkRange(key: string, start: number, end: number, ctx: string): Promise<void> {
    const want = this.objects.get(key)!.bytes.subarray(start, end);
    const got = await drain(this.store.read(key, start, end));
    assertBytes(got, want, `${ctx}: ${key} [${start}, ${end})`);
  }

  /**
   * Everything the store shows equals the model: every object (stat, full
   * read, a few ranges), missing keys, and listings.
   */
  async verify(rng: Prng, ctx: string, opts: { ranges?: number; lists?: number } = {}) {
    const store = this.store;
    for (const [key, { bytes, etag }] of this.objects) {
      const info = store.stat(key);
      assert.ok(info, `${ctx}: ${key} missing`);
      assert.equal(info.size, bytes.length, `${ctx}: ${key} size`);
      assert.equal(info.etag, etag, `${ctx}: ${key} etag`);
      assert.equal(typeof info.mtime, "number");
      await this.checkRange(key, 0, bytes.length, ctx);
      for (let i = 0; i < (opts.ranges ?? 2) && bytes.length > 0; i++) {
        const start = rng.int(bytes.length);
        const end = rng.chance(0.3) ? bytes.length : rng.range(start, bytes.length);
        await this.checkRange(key, start, end, ctx);
      }
      assert.throws(
        () => store.read(key, 0, bytes.length + 1),
        (e: unknown) => e instanceof RefsyncError && e.code === "range_not_satisfiable",
      );
    }
    for (const key of KEYS) {
      if (this.objects.has(key)) continue;
      assert.equal(store.stat(key), null, `${ctx}: ${key} should not exist`);
      assert.throws(
        () => store.read(key, 0, 0),
        (e: unknown) => e instanceof RefsyncError && e.code === "not_found",
        `${ctx}: read of missing ${key}`,
      );
    }
    this.verifyList(rng, ctx, opts.lists ?? 3);
  }

  /** `list`: everything in UTF-8 order, then prefixes with small pages. */
  verifyList(rng: Prng, ctx: string, rounds: number): void {
    const sorted = [...this.objects.keys()].sort(compareUtf8);
    const all = this.store.list({ limit: 10_000 });
    assert.deepEqual(all.objects.map((o) => o.key), sorted, `${ctx}: list order`);
    assert.equal(all.next, null);
    for (const o of all.objects) {
      const m = this.objects.get(o.key)!;
      assert.equal(o.size, m.bytes.length, `${ctx}: list size of ${o.key}`);
      assert.equal(o.etag, m.etag, `${ctx}: list etag of ${o.key}`);
    }
    for (let round = 0; round < rounds; round++) {
      const prefix = rng.pick(PREFIXES);
      const startAfter = rng.chance(0.4)
        ? rng.pick([...KEYS, "a/", "a/11", "b00", "日", ""])
        : undefined;
      const limit = rng.range(1, 3);
      const want = sorted.filter((k) =>
        k.startsWith(prefix) && (startAfter === undefined || compareUtf8(k, startAfter) > 0)
      );
      const got: string[] = [];
      let after = startAfter;
      const what = `${ctx}: list prefix=${JSON.stringify(prefix)} after=${
        JSON.stringify(startAfter)
      } limit=${limit}`;
      for (let page = 0; page <= want.length + 1; page++) {
        const r = this.store.list({ prefix: prefix || undefined, startAfter: after, limit });
        assert.ok(r.objects.length <= limit, what);
        got.push(...r.objects.map((o) => o.key));
        if (r.next === null) break;
        assert.equal(r.objects.length, limit, `${what}: a short page with a next`);
        assert.equal(r.next, r.objects[r.objects.length - 1].key, `${what}: next`);
        after = r.next;
      }
      assert.deepEqual(got, want, what);
    }
  }
}

/** A size for a whole PUT: empty, tiny, block-aligned, around 1 MiB, up to 3 MiB. */
export function putSize(rng: Prng): number {
  const r = rng.float();
  if (r < 0.05) return 0;
  if (r < 0.3) return rng.range(1, 9000);
  if (r < 0.5) return 4096 * rng.range(1, 40);
  if (r < 0.6) return (1 << 20) + rng.range(-2, 2);
  if (r < 0.7) return 4096 * rng.range(256, 768);
  return rng.range(9000, 3 << 20);
}

/**
 * Runs `hook` inside every CP of `store` just before it commits: after the
 * catalog and the block maps moved to the new tree, before any of it is on
 * disk. Returns a function that removes the hook.
 */
export function beforeCommit(
  store: ObjectStore,
  hook: (tx: CpTransaction) => Promise<void>,
): () => void {
  const vol = store.volume;
  const begin = vol.beginCp;
  vol.beginCp = function (this: typeof vol) {
    const tx = begin.call(vol);
    const commit = tx.commit;
    tx.commit = async (sb) => {
      await hook(tx);
      return await commit.call(tx, sb);
    };
    return tx;
  };
  return () => {
    vol.beginCp = begin;
  };
}

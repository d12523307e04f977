import assert from "node:assert/strict";
import {
  FILES_PER_EDIT,
  listCorpus,
  MAX_EDIT,
  realfiles,
} from "../../bench/workloads/realfiles.ts";
import type { Op } from "../../bench/workloads/mod.ts";

// Tests read only the repository: its own folders are the corpus.
const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const DIRS = [`${REPO}/docs`, `${REPO}/bench/workloads`];

function drain(w: { next(): Op | null }, max = 10_000): Op[] {
  const ops: Op[] = [];
  for (let op = w.next(); op !== null && ops.length < max; op = w.next()) ops.push(op);
  return ops;
}

function body(op: Op): Uint8Array {
  const b = op.body();
  assert.ok(b instanceof Uint8Array);
  return b;
}

Deno.test("listCorpus: regular files in name order, directories in the order given, bounded", () => {
  const all = listCorpus(DIRS, 2 ** 30);
  assert.ok(all.length >= 5);
  const paths = all.map((f) => f.path);
  assert.ok(paths.includes(`${REPO}/bench/workloads/realfiles.ts`));
  const docs = paths.filter((p) => p.startsWith(`${REPO}/docs/`));
  assert.deepEqual(paths.slice(0, docs.length), docs, "the first directory first");
  const workloads = paths.slice(docs.length);
  assert.deepEqual(workloads, [...workloads].sort());
  for (const f of all) assert.equal(f.size, Deno.statSync(f.path).size);
  assert.deepEqual(listCorpus(DIRS, 2 ** 30), all, "deterministic");
  // A bound: each directory gets half; the files that do not fit are left out.
  const bound = 40_000;
  const some = listCorpus(DIRS, bound);
  const total = some.reduce((a, f) => a + f.size, 0);
  assert.ok(total <= bound && some.length < all.length && some.length > 0, `${total} bytes`);
  assert.ok(some.some((f) => f.path.startsWith(`${REPO}/bench/`)), "the second directory too");
  assert.deepEqual(listCorpus([`${REPO}/no-such-dir`], bound), []);
});

Deno.test("realfiles: every file uploaded, then again under new keys, then small edits; then done", () => {
  const w = realfiles({ seed: 1, quick: true, corpus: DIRS, corpusBytes: 2 ** 30 });
  assert.equal(w.skip, undefined);
  assert.equal(w.finite, true, "sent whole, not cut at --seconds");
  const files = listCorpus(DIRS, 2 ** 30);
  const ops = drain(w);
  const edits = Math.ceil(files.length / FILES_PER_EDIT);
  assert.equal(ops.length, 2 * files.length + edits);
  assert.equal(w.next(), null, "stays done");
  for (const [i, f] of files.entries()) {
    const [a, b] = [ops[i], ops[files.length + i]];
    assert.equal(a.key, `realfiles/a/${f.path.slice(1)}`);
    assert.equal(b.key, `realfiles/b/${f.path.slice(1)}`);
    assert.equal(a.offset, undefined);
    const bytes = Deno.readFileSync(f.path);
    assert.deepEqual(body(a), bytes);
    assert.deepEqual(body(b), bytes);
  }
  const sizes = new Map(files.flatMap((f) => [
    [`realfiles/a/${f.path.slice(1)}`, f.size],
    [`realfiles/b/${f.path.slice(1)}`, f.size],
  ]));
  for (const e of ops.slice(2 * files.length)) {
    const size = sizes.get(e.key)!;
    assert.ok(e.offset !== undefined && e.bytes >= 1 && e.bytes <= MAX_EDIT);
    assert.ok(e.offset + e.bytes <= size);
    assert.equal(body(e).length, e.bytes);
  }
  // The same seed edits the same ranges with the same bytes.
  const again = drain(realfiles({ seed: 1, quick: true, corpus: DIRS, corpusBytes: 2 ** 30 }));
  assert.deepEqual(
    again.map((o) => [o.key, o.offset, o.bytes]),
    ops.map((o) => [o.key, o.offset, o.bytes]),
  );
  assert.deepEqual(body(again.at(-1)!), body(ops.at(-1)!));
});

Deno.test("realfiles: skipped, with the reason, when no corpus directory exists", () => {
  const w = realfiles({ seed: 1, quick: true, corpus: [`${REPO}/no-such-dir`] });
  assert.match(w.skip ?? "", /no file in the corpus .*no-such-dir/);
  assert.equal(w.next(), null);
});

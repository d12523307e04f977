import assert from "node:assert/strict";
import { constants, zstdCompressSync } from "node:zlib";
import { CONTENT_KINDS, contentOf, ContentSource } from "../../bench/workloads/content.ts";
import {
  EDIT,
  KINDS,
  MAX_EDIT,
  mixed,
  type MixedPlan,
  MixedPlanner,
  REUPLOAD,
  REUPLOAD_DELAY,
} from "../../bench/workloads/mixed.ts";

const zstd1 = (b: Uint8Array) =>
  zstdCompressSync(b, { params: { [constants.ZSTD_c_compressionLevel]: 1 } }).length;

function body(op: { body(): Uint8Array | ReadableStream<Uint8Array> }): Uint8Array {
  const b = op.body();
  assert.ok(b instanceof Uint8Array);
  return b;
}

/** Plans until `bytes` client bytes. */
function plans(seed: number, bytes: number): MixedPlan[] {
  const planner = new MixedPlanner(seed);
  const out: MixedPlan[] = [];
  for (let total = 0; total < bytes && out.length < 100_000;) {
    const p = planner.next();
    out.push(p);
    total += p.bytes;
  }
  return out;
}

Deno.test("mixed: the same seed sends the same ops and bytes, another seed others", () => {
  const [a, b, c] = [1, 1, 2].map((seed) => mixed({ seed, quick: true }));
  for (let i = 0; i < 40; i++) {
    const [x, y, z] = [a.next()!, b.next()!, c.next()!];
    assert.deepEqual([x.key, x.bytes, x.offset], [y.key, y.bytes, y.offset]);
    assert.deepEqual(body(x), body(y));
    if (i < 5) {
      const n = Math.min(x.bytes, z.bytes, 256);
      assert.notDeepEqual(body(x).subarray(0, n), body(z).subarray(0, n), `op ${i}`);
    }
  }
});

Deno.test("mixed: shares of kinds, re-uploads and edits are what the summary says", () => {
  const all = plans(7, 2 * 2 ** 30);
  const originals = all.filter((p) => p.copyOf === undefined && p.offset === undefined);
  const copies = all.filter((p) => p.copyOf !== undefined);
  const edits = all.filter((p) => p.offset !== undefined);
  const sum = (ps: MixedPlan[]) => ps.reduce((a, p) => a + p.bytes, 0);
  const total = sum(all);
  const newBytes = sum(originals);
  for (const kind of CONTENT_KINDS) {
    const share = sum(originals.filter((p) => p.kind === kind)) / newBytes;
    // Large log and binary objects are few: a wider margin than for code and prose.
    assert.ok(Math.abs(share - KINDS[kind].share) < 0.06, `${kind}: ${share}`);
  }
  const copyShare = sum(copies) / total;
  assert.ok(copyShare > 0.4 && copyShare < 0.52, `re-uploads are ${copyShare} of the bytes`);
  assert.ok(Math.abs(copies.length / originals.length - REUPLOAD) < 0.05);
  const editOps = edits.length / all.length;
  assert.ok(Math.abs(editOps - EDIT) < 0.02, `edits are ${editOps} of the ops`);
  assert.ok(sum(edits) / total < 0.001, "edits are small");
  // Every re-upload copies an original written 8-128 ops before it, under a key of its own.
  const index = new Map<string, number>();
  all.forEach((p, i) => p.offset === undefined && index.set(p.key, i));
  const keys = new Set<string>();
  for (const [i, p] of all.entries()) {
    if (p.offset === undefined) {
      assert.ok(!keys.has(p.key), `${p.key} is new`);
      keys.add(p.key);
    }
    if (p.copyOf === undefined) continue;
    const j = index.get(p.copyOf)!;
    assert.deepEqual([all[j].kind, all[j].seed, all[j].bytes], [p.kind, p.seed, p.bytes]);
    assert.ok(i - j >= REUPLOAD_DELAY.min && i - j <= REUPLOAD_DELAY.max + 64, `delay ${i - j}`);
  }
  // Edits land inside an object written before.
  for (const e of edits) {
    const target = all[index.get(e.key)!];
    assert.ok(e.bytes >= 1 && e.bytes <= MAX_EDIT);
    assert.ok(e.offset! >= 0 && e.offset! + e.bytes <= target.bytes);
  }
});

Deno.test("mixed: a re-upload sends exactly its original's bytes", () => {
  const w = mixed({ seed: 3, quick: true });
  const sent = new Map<string, Uint8Array>();
  let checked = 0;
  const planner = new MixedPlanner(3);
  for (let i = 0; i < 400 && checked < 10; i++) {
    const op = w.next()!;
    const plan = planner.next();
    assert.equal(plan.key, op.key);
    if (plan.offset !== undefined) continue;
    if (plan.copyOf === undefined) {
      if (plan.bytes <= 256 * 1024) sent.set(plan.key, body(op));
    } else if (sent.has(plan.copyOf)) {
      assert.deepEqual(body(op), sent.get(plan.copyOf));
      checked++;
    }
  }
  assert.equal(checked, 10);
});

Deno.test("mixed: text compresses with zstd level 1 as real text does, binary not at all", () => {
  const content = contentOf(5);
  let raw = 0;
  let packed = 0;
  for (const p of plans(5, 4 * 2 ** 30)) {
    if (p.copyOf !== undefined || p.offset !== undefined) continue;
    if (p.kind === "binary") {
      if (p.bytes < 2 ** 20) assert.ok(zstd1(content.bytes(p.kind, p.seed, p.bytes)) >= p.bytes);
      continue;
    }
    const b = content.bytes(p.kind, p.seed, p.bytes);
    raw += b.length;
    packed += zstd1(b);
    if (raw > 24 * 2 ** 20) break;
  }
  const ratio = packed / raw;
  assert.ok(ratio > 0.36 && ratio < 0.5, `text compresses to ${ratio}`);
});

Deno.test("ContentSource: text is printable, line-structured, a pure function of its inputs", () => {
  const a = new ContentSource(9, 256 * 1024);
  const b = new ContentSource(9, 256 * 1024);
  for (const kind of CONTENT_KINDS) {
    const x = a.bytes(kind, 4, 20_000);
    assert.equal(x.length, 20_000);
    assert.deepEqual(x, b.bytes(kind, 4, 20_000));
    assert.notDeepEqual(x, a.bytes(kind, 5, 20_000));
    if (kind === "binary") continue;
    const text = new TextDecoder("utf-8", { fatal: true }).decode(x);
    assert.ok(/^[\x20-\x7e\n]*$/.test(text), `${kind} is printable ASCII`);
    assert.ok(text.split("\n").length > 40, `${kind} has lines`);
    if (kind === "logs") {
      const line = text.split("\n")[1];
      assert.ok(line.startsWith('{"ts":"2026-') && line.endsWith("}"), line);
      JSON.parse(line);
    }
  }
  assert.equal(a.bytes("prose", 1, 0).length, 0);
});

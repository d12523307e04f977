/**
 * The CP sync record codec (src/protocol/cp-sync/records.ts):
 *
 * - every record kind survives encode -> arbitrary chunking -> decode, with
 *   edge values (u64 at 2^53-1, u32 blocks at 2^32-1, the largest PATCH,
 *   DIFF and FREE records, LOG_REF runs of 2^20 blocks), and re-encodes to
 *   the same bytes; the byte counter sees every byte;
 * - malformed streams throw: unknown kinds, truncation at every byte that is
 *   not a record boundary, oversized counts, slices and ranges past the block
 *   end, u64 fields beyond 2^53-1; the input stream is cancelled (released);
 * - the checks match an independent BLAKE3 (npm:blake3-wasm).
 *
 * Replay a failure with `REFSYNC_SEED=<seed> deno test -A tests/protocol/cp-sync/cp-sync.test.ts`.
 *
 * @module
 */
import { BLOCK_SIZE, concatBytes } from "../../../src/bytes/mod.ts";
import assert from "node:assert/strict";
import {
  blockCheck,
  CHECK_BYTES,
  type CpRecord,
  CpSyncFormatError,
  encodeRecord,
  Kind,
  MAX_FREE,
  MAX_PIECES,
  readRecords,
  runCheck,
} from "../../../src/protocol/cp-sync/records.ts";
import { blake3Hex } from "../../support/blake3.ts";
import { Prng, seeded, testSeed, withSeed } from "../../support/prng.ts";

const MAX_U32 = 0xffff_ffff;

/** A stream of `bytes` cut at random places (empty chunks included). */
function chunked(
  bytes: Uint8Array,
  rng: Prng,
  onCancel?: () => void,
): ReadableStream<Uint8Array> {
  const cuts: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const r = rng.float();
    const n = r < 0.05
      ? 0
      : r < 0.4
      ? rng.range(1, 8)
      : r < 0.8
      ? rng.range(1, 5000)
      : rng.range(1, 70_000);
    cuts.push(bytes.slice(at, at + n));
    at += n;
  }
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i === cuts.length) controller.close();
      else controller.enqueue(cuts[i++]);
    },
    cancel() {
      onCancel?.();
    },
  });
}

async function decodeAll(
  stream: ReadableStream<Uint8Array>,
  onBytes?: (n: number) => void,
): Promise<CpRecord[]> {
  const out: CpRecord[] = [];
  for await (const r of readRecords(stream, onBytes)) out.push(r);
  return out;
}

function u64(rng: Prng): number {
  return rng.pick([0, 1, 2 ** 32, 2 ** 53 - 1, rng.int(2 ** 31)]);
}

function u32(rng: Prng): number {
  return rng.pick([0, 1, MAX_U32, rng.u32()]);
}

/** A random record of `kind`; `big` picks the largest shapes. */
function randomRecord(rng: Prng, kind: CpRecord["kind"], big = false): CpRecord {
  const check = () => rng.bytes(CHECK_BYTES);
  switch (kind) {
    case "begin":
      return {
        kind,
        cp: u64(rng),
        pairGeneration: u64(rng),
        volumeId: rng.bytes(16),
        previousDigest: rng.bytes(32),
      };
    case "data":
      return { kind, block: u32(rng), bytes: rng.bytes(BLOCK_SIZE) };
    case "logRef":
      return {
        kind,
        block: u32(rng),
        count: big ? 1 << 20 : rng.pick([1, 2, 4096, rng.range(1, 1 << 20)]),
        lsn: u64(rng),
        payloadOffset: u32(rng),
        check: check(),
      };
    case "patch": {
      const n = big ? MAX_PIECES : rng.pick([0, 1, rng.range(1, 40)]);
      return {
        kind,
        block: u32(rng),
        base: u32(rng),
        check: check(),
        slices: Array.from({ length: n }, () => {
          const at = rng.int(BLOCK_SIZE);
          return {
            at,
            length: rng.range(1, BLOCK_SIZE - at),
            lsn: u64(rng),
            payloadOffset: u32(rng),
          };
        }),
      };
    }
    case "copy":
      return { kind, block: u32(rng), from: u32(rng), check: check() };
    case "diff": {
      const n = big ? MAX_PIECES : rng.pick([0, 1, rng.range(1, 30)]);
      return {
        kind,
        block: u32(rng),
        base: u32(rng),
        check: check(),
        ranges: Array.from({ length: n }, () => {
          const at = rng.int(BLOCK_SIZE);
          return { at, bytes: rng.bytes(big ? 1 : rng.range(1, Math.min(300, BLOCK_SIZE - at))) };
        }),
      };
    }
    case "free": {
      const n = big ? MAX_FREE : rng.pick([0, 1, rng.range(1, 500)]);
      return { kind, blocks: Array.from({ length: n }, () => u32(rng)) };
    }
    case "commit":
      return { kind, superblock: rng.bytes(BLOCK_SIZE) };
    case "catchUp":
      return {
        kind,
        cp: rng.int(2 ** 40),
        baseCp: rng.int(2 ** 40),
        pairGeneration: rng.range(1, 9),
        volumeId: rng.bytes(16),
        baseDigest: rng.bytes(32),
        targetDigest: rng.bytes(32),
        lsnCovered: rng.int(2 ** 40),
        resumeFrom: rng.int(2 ** 30),
      };
    case "check":
      return { kind, block: u32(rng), check: check() };
  }
}

const KINDS: CpRecord["kind"][] = [
  "begin",
  "data",
  "logRef",
  "patch",
  "copy",
  "diff",
  "free",
  "commit",
  "catchUp",
  "check",
];

/** Edge records: the extremes each field and count allows. */
function edgeRecords(rng: Prng): CpRecord[] {
  return [
    {
      kind: "begin",
      cp: 2 ** 53 - 1,
      pairGeneration: 2 ** 53 - 1,
      volumeId: new Uint8Array(16).fill(0xff),
      previousDigest: new Uint8Array(32),
    },
    { kind: "data", block: MAX_U32, bytes: new Uint8Array(BLOCK_SIZE).fill(0xa5) },
    { kind: "data", block: 0, bytes: new Uint8Array(BLOCK_SIZE) },
    {
      kind: "logRef",
      block: MAX_U32,
      count: 1 << 20,
      lsn: 2 ** 53 - 1,
      payloadOffset: MAX_U32,
      check: rng.bytes(16),
    },
    {
      kind: "patch",
      block: 2,
      base: 0,
      check: rng.bytes(16),
      slices: [
        { at: 0, length: BLOCK_SIZE, lsn: 1, payloadOffset: 0 },
        { at: BLOCK_SIZE - 1, length: 1, lsn: 2 ** 53 - 1, payloadOffset: MAX_U32 },
      ],
    },
    {
      kind: "diff",
      block: 3,
      base: 2,
      check: rng.bytes(16),
      ranges: [{ at: 0, bytes: rng.bytes(BLOCK_SIZE) }],
    },
    {
      kind: "diff",
      block: 3,
      base: 2,
      check: rng.bytes(16),
      ranges: [{ at: BLOCK_SIZE - 1, bytes: rng.bytes(1) }],
    },
    randomRecord(rng, "patch", true),
    randomRecord(rng, "diff", true),
    randomRecord(rng, "free", true),
    { kind: "free", blocks: [] },
    { kind: "commit", superblock: new Uint8Array(BLOCK_SIZE).fill(7) },
    {
      kind: "catchUp",
      cp: 2 ** 53 - 1,
      baseCp: 0,
      pairGeneration: 2 ** 53 - 1,
      volumeId: new Uint8Array(16).fill(0xff),
      baseDigest: new Uint8Array(32),
      targetDigest: new Uint8Array(32).fill(0xee),
      lsnCovered: 2 ** 53 - 1,
      resumeFrom: 2 ** 53 - 1,
    },
    { kind: "check", block: MAX_U32, check: rng.bytes(16) },
  ];
}

Deno.test("cp-sync records: every kind round-trips through random chunkings", async () => {
  const seed = testSeed(0xc95c_0001);
  await withSeed(seed, "cp-sync-roundtrip", async () => {
    const rng = new Prng(seed);
    const deadline = Date.now() + 20_000;
    for (let round = 0; round < 40 && Date.now() < deadline; round++) {
      const records: CpRecord[] = round === 0 ? edgeRecords(rng) : [];
      const n = rng.range(1, 60);
      for (let i = 0; i < n; i++) {
        records.push(randomRecord(rng, rng.pick(KINDS), rng.chance(0.03)));
      }
      // Every kind at least once per round.
      for (const k of KINDS) records.push(randomRecord(rng, k));
      const encoded = records.map(encodeRecord);
      for (const [i, e] of encoded.entries()) {
        assert.equal(
          e[0],
          Kind[
            ({
              begin: "BEGIN",
              data: "DATA",
              logRef: "LOG_REF",
              patch: "PATCH",
              copy: "COPY",
              diff: "DIFF",
              free: "FREE",
              commit: "COMMIT",
              catchUp: "CATCH_UP",
              check: "CHECK",
            } as const)[records[i].kind]
          ],
          `round ${round}: kind byte of record ${i}`,
        );
      }
      const bytes = concatBytes(encoded);
      let counted = 0;
      const decoded = await decodeAll(chunked(bytes, rng), (k) => (counted += k));
      assert.equal(decoded.length, records.length, `round ${round}: record count`);
      for (let i = 0; i < records.length; i++) {
        assert.deepEqual(
          decoded[i],
          records[i],
          `round ${round}: record ${i} (${records[i].kind})`,
        );
      }
      assert.equal(counted, bytes.length, `round ${round}: onBytes total`);
      // Re-encoding what was decoded gives the same bytes.
      assert.deepEqual(
        concatBytes(decoded.map(encodeRecord)),
        bytes,
        `round ${round}: re-encoding`,
      );
    }
  });
});

Deno.test("cp-sync records: a stream cut anywhere but at a record boundary throws", async () => {
  const seed = testSeed(0xc95c_0002);
  await withSeed(seed, "cp-sync-truncated", async () => {
    const rng = new Prng(seed);
    // Small records of every kind (the big ones are covered by the round trip).
    const records: CpRecord[] = KINDS.map((k) => randomRecord(rng, k));
    records.push({
      kind: "patch",
      block: 1,
      base: 0,
      check: rng.bytes(16),
      slices: [{ at: 5, length: 9, lsn: 3, payloadOffset: 7 }],
    });
    records.push({
      kind: "diff",
      block: 1,
      base: 2,
      check: rng.bytes(16),
      ranges: [{ at: 1, bytes: rng.bytes(3) }],
    });
    records.push({ kind: "free", blocks: [4, 5] });
    const encoded = records.map(encodeRecord);
    const bytes = concatBytes(encoded);
    const starts: number[] = [];
    const boundaries = new Map<number, number>(); // byte offset -> records before it
    let at = 0;
    boundaries.set(0, 0);
    encoded.forEach((e, i) => {
      starts.push(at);
      boundaries.set(at += e.length, i + 1);
    });
    // Every cut inside the small records and near the edges of the 4 KiB ones; inside a
    // 4 KiB payload every byte looks alike, so a sample of those.
    const cuts: number[] = [];
    for (let cut = 0; cut < bytes.length; cut++) {
      const i = starts.findLastIndex((s) => s <= cut);
      const inPayload = encoded[i].length > 4000 && cut > starts[i] + 8 &&
        cut < starts[i] + encoded[i].length - 8;
      if (!inPayload || rng.chance(0.02)) cuts.push(cut);
    }
    assert.ok(cuts.length > 300, `only ${cuts.length} cuts`);
    for (const cut of cuts) {
      const stream = chunked(bytes.subarray(0, cut), rng);
      if (boundaries.has(cut)) {
        const got = await decodeAll(stream);
        assert.equal(got.length, boundaries.get(cut), `cut at ${cut} (a boundary): records`);
        assert.deepEqual(got, records.slice(0, got.length), `cut at ${cut}: records`);
      } else {
        await assert.rejects(
          () => decodeAll(stream),
          /ended/,
          `cut at ${cut} of ${bytes.length} (inside record ${
            starts.findLastIndex((s) => s <= cut)
          }) decoded without an error`,
        );
      }
    }
  });
});

Deno.test("cp-sync records: unknown kinds, oversized counts and out-of-range fields throw", async () => {
  const seed = testSeed(0xc95c_0003);
  await withSeed(seed, "cp-sync-malformed", async () => {
    const rng = new Prng(seed);
    const set = (bytes: Uint8Array, f: (v: DataView) => void) => {
      f(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return bytes;
    };
    const logRef = () =>
      encodeRecord({
        kind: "logRef",
        block: 1,
        count: 1,
        lsn: 1,
        payloadOffset: 0,
        check: rng.bytes(16),
      });
    const patch = () =>
      encodeRecord({
        kind: "patch",
        block: 1,
        base: 0,
        check: rng.bytes(16),
        slices: [{ at: 0, length: 10, lsn: 1, payloadOffset: 0 }],
      });
    const diff = () =>
      encodeRecord({
        kind: "diff",
        block: 1,
        base: 2,
        check: rng.bytes(16),
        ranges: [{ at: 0, bytes: rng.bytes(10) }],
      });
    const begin = () =>
      encodeRecord({
        kind: "begin",
        cp: 1,
        pairGeneration: 1,
        volumeId: rng.bytes(16),
        previousDigest: rng.bytes(32),
      });
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ["kind 0", Uint8Array.of(0, 1, 2, 3), /unknown/],
      ["kind 11", Uint8Array.of(11, ...new Uint8Array(200)), /unknown/],
      ["kind 255", Uint8Array.of(255), /unknown/],
      ["LOG_REF count 0", set(logRef(), (v) => v.setUint32(5, 0, true)), /count/],
      [
        "LOG_REF count 2^20 + 1",
        set(logRef(), (v) => v.setUint32(5, (1 << 20) + 1, true)),
        /count/,
      ],
      ["LOG_REF count 2^32 - 1", set(logRef(), (v) => v.setUint32(5, MAX_U32, true)), /count/],
      ["LOG_REF lsn 2^53", set(logRef(), (v) => v.setBigUint64(9, 2n ** 53n, true)), /range/],
      ["BEGIN cp 2^64 - 1", set(begin(), (v) => v.setBigUint64(1, 2n ** 64n - 1n, true)), /range/],
      ["BEGIN generation 2^53", set(begin(), (v) => v.setBigUint64(9, 2n ** 53n, true)), /range/],
      [
        "PATCH of MAX_PIECES + 1 slices",
        set(patch(), (v) => v.setUint16(25, MAX_PIECES + 1, true)),
        /pieces/,
      ],
      ["PATCH of 65535 slices", set(patch(), (v) => v.setUint16(25, 0xffff, true)), /pieces/],
      [
        "PATCH slice past the block end",
        set(patch(), (v) => v.setUint16(27, BLOCK_SIZE - 5, true)),
        /past the block end/,
      ],
      [
        "PATCH slice lsn 2^53",
        set(patch(), (v) => v.setBigUint64(27 + 4, 2n ** 53n, true)),
        /range/,
      ],
      [
        "DIFF of MAX_PIECES + 1 ranges",
        set(diff(), (v) => v.setUint16(25, MAX_PIECES + 1, true)),
        /pieces/,
      ],
      [
        "DIFF range past the block end",
        set(diff(), (v) => v.setUint16(27, BLOCK_SIZE - 3, true)),
        /past the block end/,
      ],
      [
        "DIFF range of 65536 bytes",
        set(diff(), (v) => v.setUint16(29, 0xffff, true)),
        /past the block end/,
      ],
      [
        "FREE of MAX_FREE + 1 blocks",
        concatBytes([
          Uint8Array.of(Kind.FREE),
          set(new Uint8Array(4), (v) => v.setUint32(0, MAX_FREE + 1, true)),
        ]),
        /FREE/,
      ],
      [
        "FREE of 2^32 - 1 blocks",
        concatBytes([
          Uint8Array.of(Kind.FREE),
          set(new Uint8Array(4), (v) => v.setUint32(0, MAX_U32, true)),
        ]),
        /FREE/,
      ],
    ];
    for (const [name, bad, message] of cases) {
      // Alone, and after a valid record (the valid one is yielded first, then the error).
      for (const prefix of [new Uint8Array(0), encodeRecord({ kind: "free", blocks: [3] })]) {
        let cancelled = false;
        // A long tail, so the stream is not drained when the error comes: it must be cancelled.
        const tail = rng.bytes(400_000);
        const stream = chunked(concatBytes([prefix, bad, tail]), rng, () => (cancelled = true));
        const seen: CpRecord[] = [];
        await assert.rejects(
          async () => {
            for await (const r of readRecords(stream)) seen.push(r);
          },
          (e: unknown) => {
            assert.ok(e instanceof CpSyncFormatError, `${name}: ${e} is not a CpSyncFormatError`);
            assert.match((e as Error).message, message, `${name}: message`);
            return true;
          },
          `${name}: decoded`,
        );
        assert.equal(seen.length, prefix.length > 0 ? 1 : 0, `${name}: records before the bad one`);
        assert.ok(cancelled, `${name}: the input stream was not cancelled (released)`);
      }
    }
  });
});

Deno.test(
  "cp-sync records: a consumer that stops early releases the stream",
  seeded(0xc95c_0004, async (seed) => {
    const rng = new Prng(seed);
    const bytes = concatBytes(
      Array.from({ length: 20 }, () => encodeRecord(randomRecord(rng, "data"))),
    );
    let cancelled = false;
    let n = 0;
    for await (const _ of readRecords(chunked(bytes, rng, () => (cancelled = true)))) {
      if (++n === 3) break;
    }
    assert.equal(n, 3);
    assert.ok(cancelled, "breaking out of the loop must cancel the body stream");
  }),
);

Deno.test(
  "cp-sync records: checks agree with an independent BLAKE3",
  seeded(0xc95c_0005, (seed) => {
    const rng = new Prng(seed);
    for (let i = 0; i < 20; i++) {
      const block = rng.bytes(BLOCK_SIZE);
      const digest = Uint8Array.fromHex(blake3Hex(block));
      assert.equal(blockCheck(digest).length, CHECK_BYTES);
      assert.deepEqual([...blockCheck(digest)], [...digest.subarray(0, CHECK_BYTES)]);
      const run = rng.bytes(32 * rng.range(1, 64));
      const hex = [...runCheck(run)].map((b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(
        hex,
        blake3Hex(run).slice(0, 2 * CHECK_BYTES),
        "runCheck = BLAKE3(digests)[0..16]",
      );
    }
  }),
);

import assert from "node:assert/strict";
import { concatBytes } from "../../../src/bytes/mod.ts";
import { blake3, hashBlocks } from "../../../src/hash/blake3.ts";
import {
  checkPrefix,
  decodeFrame,
  decodeHeader,
  encodeFrame,
  Flag,
  type Frame,
  FrameError,
  FrameParser,
  framePayload,
  FrameReader,
  HEADER_SIZE,
  MAX_FRAME_LENGTH,
  MAX_PAYLOAD_LENGTH,
  Off,
  Op,
  parseFrames,
  verifyPayload,
} from "../../../src/protocol/log-frame/mod.ts";
import { headerChecksum } from "../../../src/protocol/log-frame/hash.ts";
import { bytes, putFields, putFrames } from "../../storage/log/helpers.ts";
import { seeded, uniform } from "../../support/prng.ts";

/** Rewrites the header checksum after a deliberate field edit, so other checks are reached. */
function reseal(frame: Uint8Array): Uint8Array {
  const keyLength = new DataView(frame.buffer, frame.byteOffset).getUint16(Off.keyLength, true);
  frame.set(
    headerChecksum(frame, frame.subarray(HEADER_SIZE, HEADER_SIZE + keyLength)),
    Off.headerChecksum,
  );
  return frame;
}

function throwsFrameError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FrameError, `expected FrameError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("encode/decode round trip keeps every field", () => {
  const payload = bytes(10_000, 1);
  const fields = {
    lsn: 2 ** 40 + 7,
    op: Op.WRITE,
    flags: 0,
    key: "dir/ключ/✓",
    txn: 2 ** 40 + 1,
    offset: 2 ** 35,
    mtime: 1_700_000_000_123,
  } as const;
  const { bytes: frame, header, blockDigests } = encodeFrame(fields, payload);
  const keyLength = new TextEncoder().encode(fields.key).length;
  assert.equal(frame.length, HEADER_SIZE + keyLength + payload.length);
  assert.deepEqual([...frame.subarray(0, 4)], [..."RSLG"].map((c) => c.charCodeAt(0)));

  const decoded = decodeHeader(frame);
  assert.deepEqual(decoded, header);
  assert.equal(decoded.lsn, fields.lsn);
  assert.equal(decoded.txn, fields.txn);
  assert.equal(decoded.offset, fields.offset);
  assert.equal(decoded.mtime, fields.mtime);
  assert.equal(decoded.key, fields.key);
  assert.equal(decoded.payloadLength, payload.length);
  assert.deepEqual(decoded.payloadDigest, blake3(payload));

  // One pass gave both: the digests of the two full aligned 4 KiB blocks.
  assert.deepEqual(blockDigests, hashBlocks(payload.subarray(0, 8192)));
  verifyPayload(decoded, payload);
  const whole = decodeFrame(frame);
  assert.deepEqual(whole.payload, payload);
  assert.deepEqual(whole.blockDigests, blockDigests);
});

Deno.test("a decoded frame's block digests are those of its full aligned 4 KiB blocks", () => {
  for (const n of [0, 1, 4095, 4096, 4097, 12_288, 70_000, MAX_PAYLOAD_LENGTH]) {
    const payload = bytes(n, n + 3);
    const encoded = encodeFrame(putFields(5, "k"), payload);
    const frame = decodeFrame(encoded.bytes);
    const full = n - (n % 4096);
    assert.deepEqual(frame.blockDigests, hashBlocks(payload.subarray(0, full)), `${n} bytes`);
    assert.deepEqual(frame.blockDigests, encoded.blockDigests, `${n} bytes`);
    // Hashed once, on first use.
    assert.equal(frame.blockDigests, frame.blockDigests);
  }
});

Deno.test("a payload from framePayload becomes its frame without a copy, once", () => {
  const content = bytes(70_000, 9);
  const fields = putFields(3, "dir/ключ");
  const keyLength = new TextEncoder().encode(fields.key).length;
  const expected = encodeFrame(fields, content).bytes;

  const payload = framePayload(keyLength, content.length);
  payload.set(content);
  const { bytes: frame, header } = encodeFrame(fields, payload);
  assert.equal(frame.buffer, payload.buffer, "built around the payload");
  assert.deepEqual(frame, expected);
  assert.deepEqual(decodeFrame(frame).header, header);
  // Encoding the same payload again must not rewrite the frame already handed out.
  const again = encodeFrame({ ...fields, lsn: 4, txn: 4 }, payload);
  assert.notEqual(again.bytes.buffer, payload.buffer);
  assert.deepEqual(frame, expected);

  // Not where the frame's payload goes (another key length, a part of it): copied.
  for (const [k, part] of [[keyLength + 1, 0], [keyLength, 1]]) {
    const other = framePayload(k, content.length);
    other.set(content);
    const piece = other.subarray(0, other.length - part);
    const encoded = encodeFrame(fields, piece).bytes;
    assert.notEqual(encoded.buffer, other.buffer);
    assert.deepEqual(encoded, encodeFrame(fields, content.subarray(0, piece.length)).bytes);
  }
});

Deno.test("a BLOCK_DIGESTS frame's digest is derived from its block digests and tail", () => {
  /** The definition in docs/internals.md, spelled out. */
  const derived = (payload: Uint8Array) => {
    const full = payload.length - (payload.length % 4096);
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(payload.length), true);
    return blake3(concatBytes([
      new TextEncoder().encode("refsync-blocks-1"),
      length,
      hashBlocks(payload.subarray(0, full)),
      payload.subarray(full),
    ]));
  };
  for (const n of [0, 1, 4095, 4096, 4097, 70_000, MAX_PAYLOAD_LENGTH]) {
    const payload = bytes(n, n + 11);
    const fields = { ...putFields(8, "k"), flags: Flag.BLOCK_DIGESTS };
    const encoded = encodeFrame(fields, payload);
    assert.deepEqual(encoded.header.payloadDigest, derived(payload), `${n} bytes`);
    assert.deepEqual(encoded.blockDigests, hashBlocks(payload.subarray(0, n - (n % 4096))));
    const decoded = decodeFrame(encoded.bytes);
    assert.deepEqual(decoded.blockDigests, encoded.blockDigests);
    assert.deepEqual(decoded.payload, payload);
    if (n === 0) continue;
    const flipped = encoded.bytes.slice();
    flipped[flipped.length - 1 - (n >> 1)] ^= 1;
    throwsFrameError(() => decodeFrame(flipped), /^frame at LSN 8: payload digest mismatch$/);
  }
  // The length is hashed: a block and a 32-byte payload equal to its digest differ.
  const block = bytes(4096, 5);
  const mimic = hashBlocks(block);
  assert.notDeepEqual(derived(block), derived(mimic));
  const fields = { ...putFields(8, "k"), flags: Flag.BLOCK_DIGESTS };
  assert.notDeepEqual(
    encodeFrame(fields, block).header.payloadDigest,
    encodeFrame(fields, mimic).header.payloadDigest,
  );
  // Without the flag the digest is the payload's BLAKE3, as in every log written before it.
  assert.deepEqual(encodeFrame(putFields(8, "k"), block).header.payloadDigest, blake3(block));
});

Deno.test("encode accepts every op shape and refuses broken fields", () => {
  const base = putFields(5, "k");
  encodeFrame(base, new Uint8Array(0)); // empty PUT
  // A one-record PUT's digest is derived from its blocks too (its ETag is computed apart).
  encodeFrame({ ...base, flags: base.flags | Flag.BLOCK_DIGESTS }, new Uint8Array(5000));
  encodeFrame({ ...base, op: Op.DELETE, flags: 0 }, new Uint8Array(0));
  encodeFrame(
    { ...base, lsn: 9, op: Op.COMMIT, flags: Flag.REPLACE, offset: 123, txn: 5 },
    new Uint8Array(32),
  );
  encodeFrame({ ...base, lsn: 9, op: Op.WRITE, flags: 0, txn: 5, offset: 4096 }, new Uint8Array(1));

  const cases: Array<[Partial<typeof base>, Uint8Array, RegExp]> = [
    [{ key: "" }, new Uint8Array(0), /key length 0/],
    [{ key: "x".repeat(1025) }, new Uint8Array(0), /key length 1025/],
    [{ key: "a\0b" }, new Uint8Array(0), /NUL/],
    [{ key: "\ud800" }, new Uint8Array(0), /well-formed/],
    [{}, new Uint8Array(MAX_PAYLOAD_LENGTH + 1), /payload length/],
    [{ lsn: 0, txn: 0 }, new Uint8Array(0), /LSN 0/],
    [{ txn: 6 }, new Uint8Array(0), /txn 6/],
    [{ flags: 8 }, new Uint8Array(0), /flag bits/],
    [
      { lsn: 9, op: Op.COMMIT, flags: Flag.BLOCK_DIGESTS, offset: 0, txn: 5 },
      new Uint8Array(0),
      /BLOCK_DIGESTS is only valid on WRITE/,
    ],
    [{ op: 9 as 1 }, new Uint8Array(0), /unknown op 9/],
    [{ op: Op.DELETE, flags: 0 }, new Uint8Array(1), /no payload/],
    [
      { op: Op.WRITE, flags: Flag.REPLACE },
      new Uint8Array(1),
      /REPLACE on a WRITE requires COMMIT_NOW/,
    ],
    [{ op: Op.COMMIT, flags: 0, offset: 3 }, new Uint8Array(0), /offset 0/],
    [{ lsn: 6, txn: 5 }, new Uint8Array(0), /COMMIT_NOW WRITE must have txn == lsn/],
    [{ offset: 2 ** 53 }, new Uint8Array(1), /offset/],
  ];
  for (const [patch, payload, pattern] of cases) {
    throwsFrameError(() => encodeFrame({ ...base, ...patch }, payload), pattern);
  }
});

Deno.test("decode refuses bad magic, checksum, digest, lengths, truncation", () => {
  const good = encodeFrame(putFields(17, "key"), bytes(5000, 2)).bytes;

  const badMagic = good.slice();
  badMagic[0] ^= 0xff;
  throwsFrameError(() => decodeHeader(badMagic), /bad magic 0x474c53ad/);

  for (const at of [8, 16, 30, 47, 60, 85, HEADER_SIZE + 1]) {
    const flipped = good.slice();
    flipped[at] ^= 0x10;
    throwsFrameError(() => decodeHeader(flipped), /header checksum mismatch/);
  }
  const lsnFlip = good.slice();
  lsnFlip[40] ^= 1; // mtime: the message still names the claimed LSN
  throwsFrameError(() => decodeHeader(lsnFlip), /^frame at LSN 17: header checksum mismatch$/);

  const payloadFlip = good.slice();
  payloadFlip[payloadFlip.length - 1] ^= 1;
  const h = decodeHeader(payloadFlip); // the header is intact
  throwsFrameError(
    () => verifyPayload(h, payloadFlip.subarray(HEADER_SIZE + 3)),
    /^frame at LSN 17: payload digest mismatch$/,
  );
  throwsFrameError(() => decodeFrame(payloadFlip), /payload digest mismatch/);

  const oversized = good.slice();
  new DataView(oversized.buffer).setUint32(Off.frameLength, 0xffffffff, true);
  throwsFrameError(
    () => checkPrefix(oversized),
    /frame at LSN 17: frame length 4294967295 exceeds the maximum 1049696/,
  );
  const inconsistent = good.slice();
  new DataView(inconsistent.buffer).setUint32(Off.payloadLength, 10, true);
  throwsFrameError(
    () => decodeHeader(inconsistent),
    /frame length 5099 != 96 \+ key 3 \+ payload 10/,
  );
  const bigPayload = good.slice();
  new DataView(bigPayload.buffer).setUint32(Off.payloadLength, MAX_PAYLOAD_LENGTH + 1, true);
  throwsFrameError(() => decodeHeader(bigPayload), /payload length 1048577 exceeds/);
  const zeroKey = good.slice();
  new DataView(zeroKey.buffer).setUint16(Off.keyLength, 0, true);
  throwsFrameError(() => decodeHeader(zeroKey), /key length 0/);

  throwsFrameError(() => decodeHeader(good.subarray(0, 10)), /truncated: 10 of 96/);
  throwsFrameError(() => decodeHeader(good.subarray(0, 97)), /truncated: 97 of 99 header and key/);
  throwsFrameError(
    () => decodeFrame(good.subarray(0, good.length - 1)),
    /truncated: got 5098 bytes/,
  );
  const trailing = new Uint8Array(good.length + 1);
  trailing.set(good);
  throwsFrameError(() => decodeFrame(trailing), /trailing bytes/);

  // Checksum-valid headers that break a rule are still refused.
  const hugeLsn = good.slice();
  new DataView(hugeLsn.buffer).setUint32(Off.lsn + 4, 0xffffffff, true);
  throwsFrameError(() => decodeHeader(reseal(hugeLsn)), /exceeds 2\^53/);
  const badOp = good.slice();
  badOp[Off.op] = 7;
  throwsFrameError(() => decodeHeader(reseal(badOp)), /frame at LSN 17: unknown op 7/);
  const badUtf8 = good.slice();
  badUtf8[HEADER_SIZE] = 0xff;
  throwsFrameError(() => decodeHeader(reseal(badUtf8)), /not valid UTF-8/);
});

/** Cuts `data` into random pieces (including empty ones). */
function randomChunks(data: Uint8Array, next: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let at = 0;
  while (at < data.length) {
    const r = next();
    const n = r < 0.1 ? 0 : r < 0.5 ? 1 + Math.floor(next() * 30) : Math.floor(next() * 200_000);
    chunks.push(data.slice(at, Math.min(data.length, at + n)));
    at += n;
  }
  return chunks;
}

async function readAll(chunks: Uint8Array[]): Promise<Frame[]> {
  const frames: Frame[] = [];
  for await (const f of ReadableStream.from(chunks).pipeThrough(new FrameReader())) frames.push(f);
  return frames;
}

Deno.test(
  "FrameReader yields the same frames under random chunkings (seeded)",
  seeded(42, async (seed) => {
    const sizes = [0, 1, 4095, 4096, 4097, 70_000, 300_000, 1, 8192, MAX_PAYLOAD_LENGTH];
    const payloads = sizes.map((n, i) => bytes(n, 100 + i));
    const stream = putFrames(1, payloads);
    const next = uniform(seed);
    // Byte-at-a-time input is covered by the FrameParser test below (faster).
    for (let round = 0; round < 10; round++) {
      const chunks = round === 0 ? [stream] : randomChunks(stream, next);
      const frames = await readAll(chunks);
      assert.equal(frames.length, payloads.length, `round ${round}`);
      frames.forEach((f, i) => {
        assert.equal(f.header.lsn, i + 1);
        assert.deepEqual(f.payload, payloads[i]);
        assert.equal(f.blockDigests.length, Math.floor(payloads[i].length / 4096) * 32);
      });
    }
  }),
);

Deno.test("FrameParser: byte-at-a-time input, buffered never above one frame", () => {
  const payloads = [bytes(5000, 7), bytes(0, 8), bytes(9000, 9)];
  const stream = putFrames(3, payloads);
  const parser = new FrameParser();
  const got: Frame[] = [];
  let maxBuffered = 0;
  for (let i = 0; i < stream.length; i++) {
    parser.push(stream.subarray(i, i + 1), (f) => got.push(f));
    maxBuffered = Math.max(maxBuffered, parser.buffered);
  }
  parser.end();
  assert.deepEqual(got.map((f) => f.header.lsn), [3, 4, 5]);
  assert.ok(maxBuffered < 9000 + 200, `buffered ${maxBuffered}`);
});

Deno.test(
  "FrameReader errors on bad input, stays bounded, emits frames before the defect",
  seeded(9, async (seed) => {
    const good = putFrames(1, [bytes(100, 1), bytes(200, 2)]);

    // A claimed length of 4 GiB is refused from the first 24 bytes, before any buffering.
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(Off.frameLength, 0xfffffff0, true);
    const parser = new FrameParser();
    throwsFrameError(() => parser.push(huge.subarray(0, 24), () => {}), /exceeds the maximum/);
    assert.equal(parser.buffered, 0);
    throwsFrameError(() => parser.push(good, () => {}), /exceeds the maximum/); // stays failed

    // A tighter bound is honoured too.
    throwsFrameError(
      () => parseFrames(putFrames(1, [bytes(5000, 3)]), { maxFrameLength: 1000 }),
      /exceeds the maximum 1000/,
    );

    const cases: Array<[Uint8Array, RegExp]> = [
      [
        (() => {
          const b = good.slice();
          b[good.length - 1] ^= 1; // payload of frame 2
          return b;
        })(),
        /frame at LSN 2: payload digest mismatch/,
      ],
      [
        (() => {
          const b = good.slice();
          b[good.length - 250] ^= 1; // header of frame 2
          return b;
        })(),
        /frame at LSN 2: header checksum mismatch/,
      ],
      [good.subarray(0, good.length - 5), /input ended inside a frame/],
      [good.subarray(0, 96 + 2 + 100 + 10), /input ended inside a frame \(10 of 24 bytes\)/],
      [
        new Uint8Array([...good.subarray(0, 198), 0, 0, 0, 0, ...new Uint8Array(30)]),
        /frame: bad magic 0x00000000/,
      ],
    ];
    for (const [input, pattern] of cases) {
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          const chunks = randomChunks(input, uniform(seed + input.length));
          for await (const f of ReadableStream.from(chunks).pipeThrough(new FrameReader())) {
            seen.push(f.header.lsn);
          }
        })(),
        (e: unknown) => e instanceof FrameError && pattern.test(e.message),
      );
      assert.deepEqual(seen, [1], `the valid first frame came out before the error (${pattern})`);
    }

    // Garbage of any length: bounded and always a FrameError.
    const next = uniform(seed);
    for (let i = 0; i < 200; i++) {
      const junk = bytes(Math.floor(next() * 3000), i);
      if (i % 2 === 0 && junk.length >= 4) junk.set([0x52, 0x53, 0x4c, 0x47], 0); // right magic
      const p = new FrameParser();
      try {
        p.push(junk, () => assert.fail("junk decoded as a frame"));
        p.end();
        assert.equal(junk.length, 0);
      } catch (e) {
        assert.ok(e instanceof FrameError, String(e));
      }
      assert.ok(p.buffered <= MAX_FRAME_LENGTH);
    }
    throwsFrameError(
      () => new FrameParser().push("nope" as unknown as Uint8Array, () => {}),
      /not a Uint8Array/,
    );
  }),
);

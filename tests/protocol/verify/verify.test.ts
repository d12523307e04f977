/**
 * The online verify's wire formats: the digest stream (header, fixed-size
 * records in block order, trailer with the count) and the repair body round
 * trip; a reordered, miscounted or cut stream and a malformed repair body are
 * refused with a clear error, never read as a shorter list.
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import {
  decodeRepair,
  DIGEST_HEADER_BYTES,
  DIGEST_RECORD_BYTES,
  type DigestRecord,
  digestStream,
  encodeDigestHeader,
  encodeDigestRecord,
  encodeDigestTrailer,
  encodeRepair,
  readDigestStream,
  REPAIR_BATCH_BLOCKS,
} from "../../../src/protocol/verify/mod.ts";
import { Prng, seeded } from "../../support/prng.ts";

async function readAll(body: ReadableStream<Uint8Array>) {
  const { header, records } = await readDigestStream(body);
  const out: DigestRecord[] = [];
  for await (const r of records) out.push(r);
  return { header, records: out };
}

function bytesOf(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(parts);
}

function record(block: number, damaged = false): Uint8Array {
  const out = new Uint8Array(DIGEST_RECORD_BYTES);
  encodeDigestRecord(out, 0, { block, digest: new Uint8Array(16).fill(block & 0xff), damaged });
  return out;
}

const HEADER = { cp: 2 ** 40 + 5, volumeDigest: new Uint8Array(32).fill(7) };

Deno.test(
  "digest stream: round trip of header, records in block order and trailer, in small batches",
  seeded(0xd16e, async (seed) => {
    const rng = new Prng(seed);
    const records: DigestRecord[] = [];
    for (let b = 2; records.length < 1000; b += 1 + rng.int(5)) {
      records.push({ block: b, digest: rng.bytes(16), damaged: rng.int(10) === 0 });
    }
    let ended = 0;
    const body = digestStream(HEADER, records, () => ended++, 7);
    const got = await readAll(body);
    assert.equal(got.header.cp, HEADER.cp);
    assert.deepEqual(got.header.volumeDigest, HEADER.volumeDigest);
    assert.deepEqual(got.records, records);
    assert.equal(ended, 1, "onEnd ran once");
    const empty = await readAll(digestStream(HEADER, [], () => {}));
    assert.deepEqual(empty.records, []);
  }),
);

Deno.test("digest stream: cancelled by its reader, the lister's onEnd runs", async () => {
  let ended = 0;
  const body = digestStream(
    HEADER,
    [{ block: 2, digest: new Uint8Array(16), damaged: false }],
    () => ended++,
  );
  const reader = body.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(ended, 1);
});

Deno.test("digest stream: reordered, miscounted, cut or foreign streams are refused", async () => {
  const head = encodeDigestHeader(HEADER);
  const cases: Array<[string, ReadableStream<Uint8Array>, RegExp]> = [
    [
      "out of order",
      bytesOf(head, record(5), record(5), encodeDigestTrailer(2)),
      /not in block order/,
    ],
    ["miscounted", bytesOf(head, record(5), encodeDigestTrailer(2)), /counts 2 records, 1 came/],
    ["cut", bytesOf(head, record(5), record(6).subarray(0, 10)), /cut after 1 records/],
    ["no trailer", bytesOf(head, record(5)), /before its trailer/],
    [
      "after the trailer",
      bytesOf(head, encodeDigestTrailer(0), new Uint8Array(1)),
      /after its trailer/,
    ],
    [
      "bad flags",
      bytesOf(
        head,
        (() => {
          const r = record(5);
          r[4] = 6;
          return r;
        })(),
        encodeDigestTrailer(1),
      ),
      /unknown flags/,
    ],
  ];
  for (const [what, body, message] of cases) {
    await assert.rejects(
      readAll(body),
      (e) => isError(e, "bad_request") && message.test(e.message),
      what,
    );
  }
  await assert.rejects(
    readAll(bytesOf(new Uint8Array(DIGEST_HEADER_BYTES))),
    (e) => isError(e, "bad_request") && /no digest stream header/.test(e.message),
  );
  await assert.rejects(readAll(bytesOf(head.subarray(0, 20))), /cut inside its header/);
  assert.throws(() => record(1), /not a listable block/);
});

Deno.test(
  "repair body: round trip; a body of partial records or too many blocks is refused",
  seeded(0x4e9b, (seed) => {
    const rng = new Prng(seed);
    const records = [{ block: 9, bytes: rng.bytes(4096) }, {
      block: 70_000,
      bytes: rng.bytes(4096),
    }];
    assert.deepEqual(decodeRepair(encodeRepair(records)), records);
    assert.deepEqual(decodeRepair(new Uint8Array(0)), []);
    assert.throws(
      () => decodeRepair(new Uint8Array(4099)),
      (e) => isError(e, "bad_request") && /records of 4100 bytes/.test(e.message),
    );
    assert.throws(
      () => decodeRepair(new Uint8Array((REPAIR_BATCH_BLOCKS + 1) * 4100)),
      (e) => isError(e, "too_large"),
    );
    assert.throws(() => encodeRepair([{ block: 9, bytes: new Uint8Array(10) }]), /10 bytes/);
  }),
);

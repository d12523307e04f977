/** The S3 payload checksums against their published check values ("123456789"). */
import assert from "node:assert/strict";
import { type ChecksumAlgorithm, newChecksum } from "../../src/s3/checksums.ts";

const CHECK = new TextEncoder().encode("123456789");

function hex(algorithm: ChecksumAlgorithm, pieces: Uint8Array[]): string {
  const c = newChecksum(algorithm);
  for (const p of pieces) c.update(p);
  return [...c.digest()].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("checksums: check values of CRC-32, CRC-32C, CRC-64/NVME, SHA-256", () => {
  assert.equal(hex("crc32", [CHECK]), "cbf43926");
  assert.equal(hex("crc32c", [CHECK]), "e3069283");
  assert.equal(hex("crc64nvme", [CHECK]), "ae8b14860a799888");
  assert.equal(
    hex("sha256", [CHECK]),
    "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
  );
});

Deno.test("checksums: incremental updates equal one update", () => {
  const data = new Uint8Array(100_003).map((_, i) => (i * 131) ^ (i >> 7));
  for (const a of ["crc32", "crc32c", "crc64nvme", "sha1"] as const) {
    const whole = hex(a, [data]);
    assert.equal(hex(a, [data.subarray(0, 1), data.subarray(1, 5000), data.subarray(5000)]), whole);
    assert.equal(hex(a, [new Uint8Array(0), data]), whole, a);
  }
});

/**
 * The payload checksums S3 clients send (`x-amz-checksum-*` headers and
 * trailers): CRC-32 (zlib's), CRC-32C and CRC-64/NVME (table-driven here),
 * SHA-1 and SHA-256 (node:crypto). Each is incremental and gives the base64 of
 * its big-endian value, as S3 spells it.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";

/** An incremental checksum. */
export interface Checksum {
  update(bytes: Uint8Array): void;
  /** The checksum's big-endian bytes. */
  digest(): Uint8Array;
}

/** The algorithms of the `x-amz-checksum-<name>` headers. */
export const CHECKSUM_ALGORITHMS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const;

/** One of {@link CHECKSUM_ALGORITHMS}. */
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number];

/**
 * True when `name` is a checksum algorithm this face verifies.
 *
 * @example
 * ```ts
 * isChecksumAlgorithm("crc32c"); // true
 * ```
 */
export function isChecksumAlgorithm(name: string): name is ChecksumAlgorithm {
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(name);
}

/**
 * A fresh incremental checksum of `algorithm`.
 *
 * @example
 * ```ts
 * const c = newChecksum("crc32c");
 * c.update(new TextEncoder().encode("123456789"));
 * toBase64(c.digest()); // "4waSgw=="
 * ```
 */
export function newChecksum(algorithm: ChecksumAlgorithm): Checksum {
  switch (algorithm) {
    case "crc32":
      return new Crc32();
    case "crc32c":
      return new Crc32c();
    case "crc64nvme":
      return new Crc64Nvme();
    case "sha1":
    case "sha256":
      return new NodeHash(algorithm);
  }
}

/**
 * Base64 of `bytes`.
 *
 * @example
 * ```ts
 * toBase64(new Uint8Array([0xe3, 0x06, 0x92, 0x83])); // "4waSgw=="
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

class Crc32 implements Checksum {
  #value = 0;
  update(bytes: Uint8Array): void {
    this.#value = crc32(bytes, this.#value);
  }
  digest(): Uint8Array {
    return u32be(this.#value);
  }
}

/** Table of the reflected CRC-32C (Castagnoli) polynomial 0x82F63B78. */
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

class Crc32c implements Checksum {
  #crc = 0xffffffff;
  update(bytes: Uint8Array): void {
    let c = this.#crc;
    for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    this.#crc = c;
  }
  digest(): Uint8Array {
    return u32be((this.#crc ^ 0xffffffff) >>> 0);
  }
}

/**
 * Tables of the reflected CRC-64/NVME polynomial 0x9A6C9329AC4BC9B5 (the
 * reflection of 0xAD93D23594C93659), as high and low 32-bit halves: JS
 * bitwise operators are 32-bit, and BigInt per byte would be far slower.
 */
const [CRC64_HI, CRC64_LO] = (() => {
  const hi = new Uint32Array(256);
  const lo = new Uint32Array(256);
  const polyHi = 0x9a6c9329;
  const polyLo = 0xac4bc9b5;
  for (let n = 0; n < 256; n++) {
    let h = 0;
    let l = n;
    for (let k = 0; k < 8; k++) {
      const odd = l & 1;
      l = ((l >>> 1) | (h << 31)) >>> 0;
      h = h >>> 1;
      if (odd) {
        h = (h ^ polyHi) >>> 0;
        l = (l ^ polyLo) >>> 0;
      }
    }
    hi[n] = h;
    lo[n] = l;
  }
  return [hi, lo];
})();

class Crc64Nvme implements Checksum {
  #hi = 0xffffffff;
  #lo = 0xffffffff;
  update(bytes: Uint8Array): void {
    let h = this.#hi;
    let l = this.#lo;
    for (let i = 0; i < bytes.length; i++) {
      const idx = (l ^ bytes[i]) & 0xff;
      l = ((l >>> 8) | (h << 24)) ^ CRC64_LO[idx];
      h = (h >>> 8) ^ CRC64_HI[idx];
    }
    this.#hi = h >>> 0;
    this.#lo = l >>> 0;
  }
  digest(): Uint8Array {
    const out = new Uint8Array(8);
    const view = new DataView(out.buffer);
    view.setUint32(0, (this.#hi ^ 0xffffffff) >>> 0);
    view.setUint32(4, (this.#lo ^ 0xffffffff) >>> 0);
    return out;
  }
}

class NodeHash implements Checksum {
  #hash: Hash;
  constructor(algorithm: "sha1" | "sha256") {
    this.#hash = createHash(algorithm);
  }
  update(bytes: Uint8Array): void {
    this.#hash.update(bytes);
  }
  digest(): Uint8Array {
    return new Uint8Array(this.#hash.digest());
  }
}

function u32be(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0);
  return out;
}

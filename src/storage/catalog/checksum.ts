/**
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320). The volume keeps no
 * per-block checksum, so every catalog node carries its own; CRC-32 catches
 * every burst error up to 32 bits, which FNV does not promise.
 *
 * @module
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * Continues a CRC-32 over `bytes[start, end)`. Start with `crc = 0`; chain
 * calls to checksum several ranges as one string.
 *
 * @example
 * ```ts
 * crc32(0, new TextEncoder().encode("123456789")); // 0xcbf43926
 * ```
 */
export function crc32(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

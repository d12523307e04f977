/**
 * A growable bitmap of block numbers: the allocator's record of which blocks
 * are in use. One bit per 4 KiB block (32 KiB of memory per GiB of volume).
 *
 * @module
 */

/**
 * Growable bit set over non-negative integers.
 *
 * @example
 * ```ts
 * const b = new Bitmap();
 * b.set(70);
 * b.has(70); // true
 * ```
 */
export class Bitmap {
  #bits: Uint8Array;
  #count = 0;

  constructor(capacityBits = 1 << 16) {
    this.#bits = new Uint8Array(Math.ceil(capacityBits / 8));
  }

  /** Bits set. */
  get count(): number {
    return this.#count;
  }

  /** Bits that can be addressed without growing. */
  get capacity(): number {
    return this.#bits.length * 8;
  }

  has(i: number): boolean {
    const byte = i >>> 3;
    return byte < this.#bits.length && (this.#bits[byte] & (1 << (i & 7))) !== 0;
  }

  set(i: number): void {
    if (this.has(i)) return;
    this.#grow(i);
    this.#bits[i >>> 3] |= 1 << (i & 7);
    this.#count++;
  }

  clear(i: number): void {
    if (!this.has(i)) return;
    this.#bits[i >>> 3] &= ~(1 << (i & 7));
    this.#count--;
  }

  /** The first clear bit at or after `from` (may be beyond the capacity). */
  nextClear(from: number): number {
    let i = from;
    while (i < this.capacity) {
      const byte = this.#bits[i >>> 3];
      if (byte === 0xff) {
        i = (i | 7) + 1;
        continue;
      }
      if ((byte & (1 << (i & 7))) === 0) return i;
      i++;
    }
    return i;
  }

  /** A copy with the same bits. */
  clone(): Bitmap {
    const b = new Bitmap(0);
    b.#bits = this.#bits.slice();
    b.#count = this.#count;
    return b;
  }

  #grow(i: number): void {
    if (i >>> 3 < this.#bits.length) return;
    let size = Math.max(this.#bits.length, 1024);
    while (i >>> 3 >= size) size *= 2;
    const bits = new Uint8Array(size);
    bits.set(this.#bits);
    this.#bits = bits;
  }
}

/**
 * Where to cut an overflowing node. Pure arithmetic over entry sizes, kept
 * apart from the tree code so it can be reasoned about (and tested) alone.
 *
 * @module
 */

/**
 * Cuts entries of the given byte sizes into consecutive pieces of at most
 * `capacity` bytes each, as few and as even as a greedy pass allows. Returns
 * the exclusive end index of each piece. Every size must be at most
 * `capacity`, so each piece takes at least one entry and the cut always makes
 * progress.
 *
 * @example
 * ```ts
 * planSplit([1000, 1000, 1000, 1000, 1000], 4000); // [3, 5]
 * ```
 */
export function planSplit(sizes: readonly number[], capacity: number): number[] {
  let remaining = 0;
  for (const size of sizes) {
    if (size > capacity) throw new Error(`catalog: entry of ${size} bytes exceeds ${capacity}`);
    remaining += size;
  }
  const ends: number[] = [];
  let start = 0;
  while (start < sizes.length) {
    if (remaining <= capacity) {
      ends.push(sizes.length);
      break;
    }
    // Re-aim at each cut so rounding does not pile up in the last piece.
    const target = remaining / Math.ceil(remaining / capacity);
    let filled = 0;
    let end = start;
    while (end < sizes.length) {
      const size = sizes[end];
      // Stop before overflowing, or when taking the entry would overshoot the
      // target by more than leaving it out would undershoot it.
      if (filled > 0 && (filled + size > capacity || filled + size / 2 > target)) break;
      filled += size;
      end++;
    }
    ends.push(end);
    remaining -= filled;
    start = end;
  }
  return ends;
}

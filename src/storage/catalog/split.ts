/**
 * Where to cut an overflowing node. Pure arithmetic over entry sizes, kept
 * apart from the tree code so it can be reasoned about (and tested) alone.
 *
 * @module
 */

/**
 * Cuts entries of the given byte sizes into consecutive pieces of at most
 * `capacity` bytes: as few pieces as possible, and among those cuts the one
 * whose largest piece is smallest, so the bytes spread evenly and no piece is
 * left nearly empty. Returns the exclusive end index of each piece. Every
 * size must be at most `capacity`.
 *
 * @example
 * ```ts
 * planSplit([1000, 1000, 1000, 1000, 1000], 4000); // [3, 5]
 * planSplit([2000, 2000, 100], 4080); // [1, 3]
 * ```
 */
export function planSplit(sizes: readonly number[], capacity: number): number[] {
  let total = 0;
  let largest = 0;
  for (const size of sizes) {
    if (size > capacity) throw new Error(`catalog: entry of ${size} bytes exceeds ${capacity}`);
    total += size;
    largest = Math.max(largest, size);
  }
  // Filling each piece to the brim takes the fewest pieces. Then binary-search
  // the smallest piece limit that still needs no more pieces than that
  // (the piece count only falls as the limit grows).
  const fewest = fill(sizes, capacity).length;
  let lo = Math.max(largest, Math.ceil(total / fewest));
  let hi = capacity;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (fill(sizes, mid).length <= fewest) hi = mid;
    else lo = mid + 1;
  }
  return smoothBackward(sizes, fill(sizes, lo), lo);
}

/**
 * A greedy cut leaves the last piece short. Walking the cuts back to front,
 * each piece takes entries from the end of the one before while that makes
 * the pair more even and stays within `limit`, spreading the shortfall.
 */
function smoothBackward(sizes: readonly number[], ends: number[], limit: number): number[] {
  const sum = (from: number, to: number) => {
    let total = 0;
    for (let i = from; i < to; i++) total += sizes[i];
    return total;
  };
  for (let j = ends.length - 2; j >= 0; j--) {
    const start = j === 0 ? 0 : ends[j - 1];
    let left = sum(start, ends[j]);
    let right = sum(ends[j], ends[j + 1]);
    // Keep at least one entry on the left; each move shrinks the difference.
    while (ends[j] - start > 1) {
      const moved = sizes[ends[j] - 1];
      if (right + moved > limit || right + moved >= left) break;
      left -= moved;
      right += moved;
      ends[j]--;
    }
  }
  return ends;
}

/** Greedy cut: each piece takes entries while they fit in `limit`. */
function fill(sizes: readonly number[], limit: number): number[] {
  const ends: number[] = [];
  let filled = 0;
  for (let i = 0; i < sizes.length; i++) {
    if (filled > 0 && filled + sizes[i] > limit) {
      ends.push(i);
      filled = 0;
    }
    filled += sizes[i];
  }
  if (sizes.length > 0) ends.push(sizes.length);
  return ends;
}

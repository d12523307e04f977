/**
 * The `Refsync-Mirror` response header of an acknowledged write on a source
 * with a destination: `in-sync` when the destination held the write and the
 * pair was in sync when it was acknowledged (RPO 0), `out-of-sync` when it
 * was acknowledged on the source's durability only (the available policy
 * during an outage, or the destination not yet a complete image). Both faces
 * (native, S3) set it; a source without a destination sends none.
 *
 * @module
 */

/** The header's name. */
export const MIRROR_HEADER = "Refsync-Mirror";

/**
 * The header for a write acknowledged with `mirrored`, or none when there is
 * no mirror (`mirror` false).
 *
 * @example
 * ```ts
 * mirrorHeader(true, false); // { "Refsync-Mirror": "out-of-sync" }
 * mirrorHeader(false, false); // {}
 * ```
 */
export function mirrorHeader(mirror: boolean, mirrored: boolean): Record<string, string> {
  if (!mirror) return {};
  return { [MIRROR_HEADER]: mirrored ? "in-sync" : "out-of-sync" };
}

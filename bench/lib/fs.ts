/**
 * Which file system a directory lives on, from /proc/mounts (the longest
 * mount point that contains it), so the report says what it ran on.
 *
 * @module
 */

/** A mount that holds the data directory. */
export interface FileSystemInfo {
  /** e.g. ext4, xfs, tmpfs, btrfs, overlay. */
  type: string;
  device: string;
  mountPoint: string;
  options: string;
  /** The directory asked about (resolved). */
  path: string;
}

/** Undoes /proc/mounts' octal escapes (`\040` is a space). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Picks the mount of `path` from the text of /proc/mounts: the longest mount
 * point that is `path` or one of its parents (the last one listed wins a tie,
 * as the kernel stacks later mounts on top). Null when none matches.
 *
 * @example
 * ```ts
 * mountOf("/tmp/x", "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n")?.type; // "tmpfs"
 * ```
 */
export function mountOf(path: string, mounts: string): FileSystemInfo | null {
  let best: FileSystemInfo | null = null;
  for (const line of mounts.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const mountPoint = unescape(f[1]);
    const inside = mountPoint === "/" || path === mountPoint || path.startsWith(mountPoint + "/");
    if (!inside) continue;
    if (best === null || mountPoint.length >= best.mountPoint.length) {
      best = { type: f[2], device: unescape(f[0]), mountPoint, options: f[3], path };
    }
  }
  return best;
}

/** The file system of an existing directory. */
export function fileSystemOf(dir: string): FileSystemInfo {
  const path = Deno.realPathSync(dir);
  let mounts = "";
  try {
    mounts = Deno.readTextFileSync("/proc/mounts");
  } catch {
    // Not Linux.
  }
  return mountOf(path, mounts) ??
    { type: "unknown", device: "unknown", mountPoint: "?", options: "", path };
}

/**
 * Wrong references, planted and caught: the simulator's faults at rest on
 * the destination (a bit flipped in the bytes a LOG_REF, PATCH, COPY or DIFF
 * resolves against), and the checks that tell a correct refusal (the
 * destination asks for DATA, a read of a damaged block answers `corrupt`) from
 * a wrong image: every reference the source sends is true on the source, no
 * CP sync reaches its commit with content that differs from the source's, and
 * a committed image is the source's block for block, but for the blocks the
 * fault model damaged.
 *
 * @module
 */
import { blake3, hashBlocks } from "../src/hash/blake3.ts";
import { walkMap } from "../src/storage/blockmap/blockmap.ts";
import { Catalog } from "../src/storage/catalog/mod.ts";
import { decodeHeader, HEADER_SIZE } from "../src/protocol/log-frame/mod.ts";
import { blockCheck, type CpRecord, runCheck } from "../src/protocol/cp-sync/records.ts";
import type { MemoryFileSystem } from "../src/storage/fs/memory.ts";
import { decodeRecord } from "../src/storage/objects/record.ts";
import type { ObjectStore } from "../src/storage/objects/store.ts";
import { BLOCK_SIZE, equalBytes } from "../src/bytes/mod.ts";

/** A block of a committed tree: a catalog node, a map block, or an object's data block. */
export interface TreeBlock {
  block: number;
  /** The object it belongs to (null for a catalog node). */
  key: string | null;
  data: boolean;
}

/** Every block of `store`'s committed CP. */
export function committedBlocks(store: ObjectStore): TreeBlock[] {
  const out: TreeBlock[] = [];
  const dec = new TextDecoder();
  new Catalog(store.volume, store.superblock.catalogRoot).walk(
    (node) => out.push({ block: node.block, key: null, data: false }),
    (key, value) => {
      const name = dec.decode(key);
      walkMap(store.volume, decodeRecord(value).map, (p, isMap) => {
        out.push({ block: p.block, key: name, data: !isMap });
      });
    },
  );
  return out;
}

/** Bits flipped at rest, and what their bytes became. */
export interface Damage {
  path: string;
  /** The bits flipped (a later flip in a block still damaged joins its damage). */
  bits: number[];
  /** On the medium (survives a crash) or only in the cached copy. */
  lasting: boolean;
  /**
   * The bytes the damage left, at `at` of the file: a write over them since
   * replaced it. The byte of a log payload (its file is appended to, and cut
   * back only at a torn or reset tail); the whole block of the volume: a
   * block written again may hold the damaged value at that byte, and
   * undoing the flip would then damage the new bytes.
   */
  at: number;
  bytes: Uint8Array;
  /** For a log record's payload: its LSN. */
  lsn?: number;
  /** For a volume block: its number and its object. */
  block?: { block: number; key: string };
}

/** The bytes of `path` at `[at, at + length)`, or null when it is gone. */
function bytesAt(
  fs: MemoryFileSystem,
  path: string,
  at: number,
  length: number,
): Uint8Array | null {
  if (!fs.existsSync(path)) return null;
  const bytes = fs.readFileSync(path);
  return at + length <= bytes.length ? bytes.slice(at, at + length) : null;
}

/**
 * Flips a bit of `path` at rest and says what it damaged: the byte, or with
 * `block` the 4 KiB block it lies in.
 */
export function flip(
  fs: MemoryFileSystem,
  path: string,
  bit: number,
  lasting: boolean,
  block = false,
): Damage {
  fs.flipBit(path, bit, lasting);
  const at = block ? (bit >> 3) - (bit >> 3) % BLOCK_SIZE : bit >> 3;
  const bytes = bytesAt(fs, path, at, block ? BLOCK_SIZE : 1)!;
  return { path, bits: [bit], lasting, at, bytes };
}

/** One more bit flipped in the bytes of `d`, still damaged: it joins that damage. */
export function flipAgain(fs: MemoryFileSystem, d: Damage, bit: number): void {
  fs.flipBit(d.path, bit, d.lasting);
  d.bits.push(bit);
  d.bytes = bytesAt(fs, d.path, d.at, d.bytes.length)!;
}

/** True while the damaged bytes are still there (nothing wrote over them since). */
export function stillDamaged(fs: MemoryFileSystem, d: Damage): boolean {
  const now = bytesAt(fs, d.path, d.at, d.bytes.length);
  return now !== null && equalBytes(now, d.bytes);
}

/** Undoes a damage that is still there (a promotion starts from an intact disk). */
export function repair(fs: MemoryFileSystem, d: Damage): void {
  if (!stillDamaged(fs, d)) return;
  for (const bit of d.bits) fs.flipBit(d.path, bit, d.lasting);
}

/**
 * The payload bytes of every frame in the log segments under `logDir`, as
 * `[start, end)` byte ranges of each segment file: what LOG_REF and PATCH
 * resolve against (headers and keys are left alone: damage there is what the
 * log's own checks refuse at the next open).
 */
export function payloadSpans(
  fs: MemoryFileSystem,
  logDir: string,
): Array<{ path: string; lsn: number; start: number; end: number }> {
  const spans: Array<{ path: string; lsn: number; start: number; end: number }> = [];
  if (!fs.existsSync(logDir)) return spans;
  for (const name of fs.readdirSync(logDir).sort()) {
    if (!name.endsWith(".seg")) continue;
    const path = `${logDir}/${name}`;
    const bytes = fs.readFileSync(path);
    for (let at = 0; at + HEADER_SIZE <= bytes.length;) {
      let h;
      try {
        h = decodeHeader(bytes.subarray(at));
      } catch {
        break; // a torn tail: not something the destination resolves against
      }
      const start = at + HEADER_SIZE + h.keyLength;
      if (h.payloadLength > 0 && start + h.payloadLength <= bytes.length) {
        spans.push({ path, lsn: h.lsn, start, end: start + h.payloadLength });
      }
      at += h.frameLength;
    }
  }
  return spans;
}

/**
 * Null when a COPY or LOG_REF of a CP sync is true on the source that sent
 * it (its `check` matches the bytes it names there), else what is wrong. The
 * block locator's hits are hints; the source re-checks each against its bytes
 * before it sends it, so a false one is a source bug, whatever the
 * destination then makes of it.
 */
export function falseReference(source: ObjectStore, r: CpRecord): string | null {
  if (r.kind === "copy") {
    const bytes = r.from === 0 ? new Uint8Array(BLOCK_SIZE) : source.volume.readBlock(r.from);
    const ok = equalBytes(blockCheck(blake3(bytes)), r.check);
    return ok
      ? null
      : `COPY of block ${r.block} from ${r.from}, whose bytes do not match its check`;
  }
  if (r.kind === "logRef") {
    const rec = source.log.locate(r.lsn);
    const length = r.count * BLOCK_SIZE;
    if (rec === null || r.payloadOffset + length > rec.payloadLength) {
      return `LOG_REF of block ${r.block} to LSN ${r.lsn}, not in the source's log`;
    }
    const run = source.log.readPayload(rec.position, r.payloadOffset, length);
    if (equalBytes(runCheck(hashBlocks(run)), r.check)) return null;
    return `LOG_REF of block ${r.block} to LSN ${r.lsn}+${r.payloadOffset}, whose bytes do not match its check`;
  }
  return null;
}

/**
 * Null when the destination's committed image is the source's (both at the
 * same CP), block for block, except where `damaged` allows the bytes the
 * fault model left there; else the first difference.
 */
export function imageDifference(
  source: ObjectStore,
  dest: ObjectStore,
  damaged: (block: number, bytes: Uint8Array) => boolean,
): string | null {
  for (const { block, key } of committedBlocks(source)) {
    const want = source.volume.readBlock(block);
    const got = dest.volume.readBlock(block);
    if (equalBytes(want, got) || damaged(block, got)) continue;
    return `destination block ${block} (${
      key === null ? "catalog" : `'${key}'`
    }) of CP ${source.superblock.cp} differs from the source's: a wrong image was committed`;
  }
  return null;
}

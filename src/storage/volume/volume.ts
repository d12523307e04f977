/**
 * The volume: one file of 4 KiB blocks with two superblock slots and
 * copy-on-write allocation.
 *
 * Invariants (asserted):
 * - a block live in the last committed CP is never written ({@link CpTransaction.write}),
 *   but by a repair with the very bytes its pointer names ({@link Volume.repairBlocks});
 * - a CP commits by writing its blocks, fdatasync, then its superblock slot,
 *   fdatasync: a crash at any instant leaves the previous CP intact;
 * - blocks released by CP n are reused only by CP n+1 or later, which the engine
 *   starts only once CP n is committed on both sides;
 * - both superblock slots exist from creation, so a superblock write never
 *   grows the file (never needs free space).
 *
 * A full disk (ENOSPC) while a CP writes its blocks is the domain error
 * `no_space`: the CP aborts and the committed CP is untouched. A failure once
 * the superblock write began leaves the slot's contents unknown: the volume
 * then refuses further CPs until it is reopened.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../bytes/mod.ts";
import { asNoSpace, type FileSystem, hasCode, nodeFileOps } from "../fs/file-ops.ts";
import { type Random, systemRandom } from "../../runtime/random.ts";
import { Bitmap } from "./bitmap.ts";
import {
  assertSuccessor,
  decodeSuperblock,
  encodeSuperblock,
  type Superblock,
  SUPERBLOCK_SLOTS,
  SUPERBLOCK_VERSION,
  superblockVersion,
} from "./superblock.ts";
import { type BlockKind, type CpWriter } from "./types.ts";
import { WrittenBlocks } from "./written.ts";
import { writeFileAtomic } from "../durable.ts";
import { assert } from "../../assert.ts";
import { equalBytes } from "../../bytes/mod.ts";

/** Pending CP writes are flushed once they hold this many bytes. */
const WRITE_BUFFER_BYTES = 1 << 20;

/**
 * A copy-on-write volume file.
 *
 * @example
 * ```ts
 * const vol = await Volume.open("data/volume.dat");
 * const tx = vol.beginCp();
 * const b = tx.allocate();
 * tx.write(b, new Uint8Array(4096), "data", 0);
 * await tx.commit({ ...vol.superblock, cp: tx.cp });
 * vol.close();
 * ```
 */
export class Volume {
  readonly path: string;
  readonly #ops: FileSystem;
  #fd: number;
  /** Blocks the file holds (its size in blocks): what the allocator can reuse without growing it. */
  #fileBlocks: number;
  /** Set when a superblock write failed: no further CP until reopened. */
  #broken: Error | null = null;
  #superblock: Superblock;
  /** The slot holding the committed superblock: the next commit writes the other one. */
  #slot = 0;
  #previous: Superblock | null = null;
  /** Blocks live in the committed CP (superblock slots included). */
  #live = new Bitmap();
  #cp: CpTransaction | null = null;

  private constructor(path: string, fd: number, sb: Superblock, ops: FileSystem) {
    this.path = path;
    this.#ops = ops;
    this.#fd = fd;
    this.#fileBlocks = Math.ceil(ops.sizeSync(fd) / BLOCK_SIZE);
    this.#superblock = sb;
    for (let i = 0; i < SUPERBLOCK_SLOTS; i++) this.#live.set(i);
  }

  /**
   * Opens the volume at `path`, creating it (CP 0, empty catalog) when the file
   * does not exist (unless `create` is false), with a volume id from `random`. Picks the valid
   * superblock with the highest CP number.
   * The caller must then mark every live block with {@link Volume.markLive}
   * (the engine walks the catalog) before the first CP.
   *
   * @example
   * ```ts
   * import { nodeFileOps } from "../fs/file-ops.ts";
   * const vol = await Volume.open(`${await Deno.makeTempDir()}/volume.dat`, { fileOps: nodeFileOps });
   * ```
   */
  static open(
    path: string,
    opts: { fileOps?: FileSystem; create?: boolean; random?: Random } = {},
  ): Promise<Volume> {
    const ops = opts.fileOps ?? nodeFileOps;
    let fd: number;
    try {
      fd = ops.openSync(path, "r+");
    } catch (e) {
      if (!hasCode(e, "ENOENT") || opts.create === false) return Promise.reject(e);
      const sb: Superblock = {
        volumeId: (opts.random ?? systemRandom).fill(new Uint8Array(16)),
        pairGeneration: 1,
        cp: 0,
        lsnCovered: 0,
        catalogRoot: null,
        blockCount: SUPERBLOCK_SLOTS,
        volumeDigest: new Uint8Array(32),
        promotedAtLsn: 0,
        promotedFromCp: 0,
        promotedFromDigest: new Uint8Array(32),
      };
      // Created whole or not at all: a crash here must not leave an empty volume.dat that can
      // never be opened. Slot 1 is written too (invalid, zeros) so that no superblock write
      // grows the file.
      const slots = new Uint8Array(SUPERBLOCK_SLOTS * BLOCK_SIZE);
      slots.set(encodeSuperblock(sb), 0);
      try {
        writeFileAtomic(path, slots, 0o644, ops);
      } catch (e) {
        if (ops.existsSync(`${path}.tmp`)) ops.unlinkSync(`${path}.tmp`);
        return Promise.reject(asNoSpace(e, `a new volume ${path}`));
      }
      return Promise.resolve(new Volume(path, ops.openSync(path, "r+"), sb, ops));
    }
    // Each commit writes the slot not holding the committed CP (CP n lands in slot n % 2 until
    // a catch-up jumps CPs), so the valid slot with the highest CP is the committed one.
    const candidates: Array<Superblock & { slot: number }> = [];
    for (let slot = 0; slot < SUPERBLOCK_SLOTS; slot++) {
      const sb = decodeSuperblock(readAt(ops, fd, slot));
      if (sb !== null) candidates.push({ ...sb, slot });
    }
    if (candidates.length === 0) {
      const versions = Array.from(
        { length: SUPERBLOCK_SLOTS },
        (_, slot) => superblockVersion(readAt(ops, fd, slot)),
      );
      ops.closeSync(fd);
      const other = versions.find((v) => v !== null);
      if (other !== undefined) {
        return Promise.reject(
          new Error(
            `${path}: a volume of format version ${other}; this refsync reads version ${SUPERBLOCK_VERSION} only (block pointers carry checksums since version 2). Copy its objects out with the refsync that wrote it, then into a new data directory`,
          ),
        );
      }
      return Promise.reject(
        new Error(
          `${path}: no valid superblock in either slot; the file is not a refsync volume or both slots are corrupt`,
        ),
      );
    }
    candidates.sort((a, b) => b.cp - a.cp);
    const [{ slot, ...committed }, older] = candidates;
    const volume = new Volume(path, fd, committed, ops);
    volume.#slot = slot;
    if (older?.cp === committed.cp - 1) {
      const { slot: _, ...previous } = older;
      volume.#previous = previous;
    }
    return Promise.resolve(volume);
  }

  /** The committed CP's superblock. */
  get superblock(): Superblock {
    return this.#superblock;
  }

  /** The CP before the committed one, while its slot still holds it. */
  get previousSuperblock(): Superblock | null {
    return this.#previous;
  }

  /** Reads one block (a fresh array). */
  readBlock(block: number): Uint8Array {
    return readAt(this.#ops, this.#fd, block);
  }

  /**
   * Bytes of the file that hold no block live in the committed CP (nor one
   * kept for the mirror): a CP writes there before it grows the file.
   */
  get unusedBytes(): number {
    return Math.max(0, this.#fileBlocks - this.#live.count) * BLOCK_SIZE;
  }

  /** @internal Positioned write of all of `buf` for a CP, as `no_space` when the disk is full. */
  writeAt(buf: Uint8Array, position: number): void {
    try {
      pwrite(this.#ops, this.#fd, buf, position, (end) => {
        this.#fileBlocks = Math.max(this.#fileBlocks, Math.ceil(end / BLOCK_SIZE));
      });
    } catch (e) {
      throw asNoSpace(e, `the volume ${this.path}`);
    }
  }

  /** @internal fdatasync of the file. */
  async sync(): Promise<void> {
    try {
      await this.#ops.fdatasync(this.#fd);
    } catch (e) {
      throw asNoSpace(e, `the volume ${this.path}`);
    }
  }

  /** The slot the next superblock goes to: the one not holding the committed CP. */
  get nextSlot(): number {
    return this.#slot ^ 1;
  }

  /**
   * @internal Writes the superblock of CP `cp` durably into the slot not holding the
   * committed CP; on failure the volume refuses further CPs.
   */
  async writeSuperblock(bytes: Uint8Array, cp: number): Promise<void> {
    try {
      this.writeAt(bytes, this.nextSlot * BLOCK_SIZE);
      await this.sync();
      this.#slot = this.nextSlot;
    } catch (e) {
      this.#broken = new Error(
        `${this.path}: the superblock of CP ${cp} could not be written (${
          e instanceof Error ? e.message : e
        }); reopen the volume`,
        { cause: e },
      );
      throw e;
    }
  }

  /**
   * Makes the previous CP the committed one again: the committed CP's slot is
   * zeroed durably (a slot that is no valid superblock), so a reopen picks the
   * previous CP too. For a destination that rejoins its promoted source (a
   * failback) when the promotion started from that previous CP: the
   * committed one is a CP only the old source had. Its blocks stay as they
   * are (the caller marks the destination's image incomplete first).
   */
  rollBack(): void {
    if (this.#cp !== null) throw new Error("invariant: a CP is in progress");
    const previous = this.#previous;
    if (previous === null) throw new Error("invariant: no previous CP to go back to");
    this.writeAt(new Uint8Array(BLOCK_SIZE), this.#slot * BLOCK_SIZE);
    // Rare (once per failback): on the event loop, so the caller stays synchronous.
    this.#ops.fdatasyncSync(this.#fd);
    this.#superblock = previous;
    this.#previous = null;
    this.#slot ^= 1;
  }

  /**
   * Writes each `bytes` over its `block`, live in the committed CP, then
   * fdatasyncs: the one write of a live block, a repair. The caller has
   * checked the bytes against the block's own pointer (they are the bytes the
   * CP wrote there), so the committed image does not change; only damage goes.
   */
  async repairBlocks(records: Array<{ block: number; bytes: Uint8Array }>): Promise<void> {
    for (const { block, bytes } of records) {
      if (block < SUPERBLOCK_SLOTS || !this.#live.has(block) || bytes.length !== BLOCK_SIZE) {
        throw new Error(`invariant: a repair writes one block live in CP ${this.#superblock.cp}`);
      }
    }
    for (const { block, bytes } of records) this.writeAt(bytes, block * BLOCK_SIZE);
    await this.sync();
  }

  /** Marks `block` live in the committed CP (at open, from a walk of the trees). */
  markLive(block: number): void {
    this.#live.set(block);
  }

  /** True when `block` is live in the committed CP. */
  isLive(block: number): boolean {
    return this.#live.has(block);
  }

  /**
   * Returns blocks released by a committed CP to free space. Called once that
   * CP is committed on both sides and no reader of an older CP remains.
   */
  free(blocks: number[]): void {
    for (const b of blocks) {
      if (b < SUPERBLOCK_SLOTS) throw new Error("invariant: a superblock slot is never freed");
      this.#live.clear(b);
    }
  }

  /** Starts the next CP. Only one CP is written at a time. */
  beginCp(): CpTransaction {
    if (this.#cp !== null) throw new Error("invariant: a CP is already in progress");
    if (this.#broken) throw this.#broken;
    this.#cp = new CpTransaction(this, this.#live, this.#superblock.cp + 1);
    return this.#cp;
  }

  /**
   * Starts a catch-up to CP `targetCp` (a destination becoming the image of its
   * source's CP, many CPs at once): blocks are written where the source has
   * them, over blocks of the committed CP too (the destination declared its
   * image incomplete before the first one), and committed by
   * {@link CpTransaction.commitCatchUp}.
   */
  beginCatchUp(targetCp: number): CpTransaction {
    if (this.#cp !== null) throw new Error("invariant: a CP is already in progress");
    if (this.#broken) throw this.#broken;
    const slots = new Bitmap();
    for (let i = 0; i < SUPERBLOCK_SLOTS; i++) slots.set(i);
    this.#cp = new CpTransaction(this, slots, targetCp);
    return this.#cp;
  }

  /** @internal Called by a CpTransaction when it commits or aborts. */
  finishCp(
    tx: CpTransaction,
    committed: Superblock | null,
    live: Bitmap | null,
    replaced = false,
  ): void {
    if (this.#cp !== tx) throw new Error("invariant: finishing a CP that is not current");
    this.#cp = null;
    if (committed !== null && live !== null) {
      // After a catch-up the committed CP is not the one before the new one; after one that
      // replaced a history (a failback's baseline), no CP of the old history is.
      this.#previous = !replaced && this.#superblock.cp === committed.cp - 1
        ? this.#superblock
        : null;
      this.#superblock = committed;
      this.#live = live;
    }
  }

  close(): void {
    this.#ops.closeSync(this.#fd);
  }
}

/**
 * One CP being written: allocation, buffered positioned writes, and the atomic
 * commit. Implements {@link CpWriter} for the catalog and the block maps.
 */
export class CpTransaction implements CpWriter {
  readonly cp: number;
  /** Every block written, in write order: the CP sync walks these rows. */
  readonly written: WrittenBlocks = new WrittenBlocks();
  readonly released: number[] = [];
  #volume: Volume;
  #live: Bitmap;
  #inUse: Bitmap;
  #cursor = SUPERBLOCK_SLOTS;
  #blockCount: number;
  #pending = new Map<number, Uint8Array>();
  #done = false;

  constructor(volume: Volume, live: Bitmap, cp: number) {
    this.#volume = volume;
    this.#live = live;
    this.#inUse = live.clone();
    this.cp = cp;
    this.#blockCount = volume.superblock.blockCount;
  }

  /** Blocks in the volume once this CP commits (the allocation high-water mark). */
  get blockCount(): number {
    return this.#blockCount;
  }

  readBlock(block: number): Uint8Array {
    const pending = this.#pending.get(block);
    return pending ? pending.slice() : this.#volume.readBlock(block);
  }

  allocate(): number {
    this.#assertOpen();
    const block = this.#inUse.nextClear(this.#cursor);
    this.#claim(block);
    this.#cursor = block + 1;
    return block;
  }

  /**
   * Reserves a block chosen elsewhere (the destination writes where the source
   * wrote). Throws when the block is live in the committed CP: applying it
   * would overwrite the image a crash must fall back to.
   */
  claim(block: number): void {
    this.#assertOpen();
    if (block < SUPERBLOCK_SLOTS || this.#live.has(block)) {
      throw new Error(`block ${block} is live in CP ${this.cp - 1}; a CP never overwrites it`);
    }
    if (!this.#inUse.has(block)) this.#claim(block);
  }

  /**
   * Buffers a block of this CP; returns its row in {@link CpTransaction.written}
   * (with `digest`, the block's BLAKE3, when the caller computed it).
   */
  write(
    block: number,
    data: Uint8Array,
    kind: BlockKind,
    base: number,
    digest?: Uint8Array,
  ): number {
    this.#assertOpen();
    if (data.length !== BLOCK_SIZE) throw new Error(`invariant: a block is ${BLOCK_SIZE} bytes`);
    if (this.#live.has(block) || !this.#inUse.has(block)) {
      throw new Error(`invariant: block ${block} written without being allocated in CP ${this.cp}`);
    }
    if (this.#pending.has(block)) throw new Error(`invariant: block ${block} written twice`);
    this.#pending.set(block, data);
    const row = this.written.add(block, kind, base);
    if (digest) this.written.setDigest(row, digest);
    return row;
  }

  release(block: number): void {
    this.#assertOpen();
    if (!this.#live.has(block)) {
      throw new Error(`invariant: releasing block ${block}, which is not live`);
    }
    this.released.push(block);
  }

  /** True when buffered writes should be flushed ({@link CpTransaction.flush}). */
  get shouldFlush(): boolean {
    return this.#pending.size * BLOCK_SIZE >= WRITE_BUFFER_BYTES;
  }

  /** Writes the buffered blocks to the file, coalescing consecutive blocks. */
  flush(): void {
    if (this.#pending.size === 0) return;
    const blocks = [...this.#pending.keys()].sort((a, b) => a - b);
    const pending = this.#pending;
    this.#pending = new Map();
    for (let i = 0; i < blocks.length;) {
      let j = i + 1;
      while (j < blocks.length && blocks[j] === blocks[j - 1] + 1 && j - i < 256) j++;
      let at = blocks[i] * BLOCK_SIZE;
      for (const piece of joined(blocks.slice(i, j).map((b) => pending.get(b)!))) {
        this.#volume.writeAt(piece, at);
        at += piece.length;
      }
      i = j;
    }
  }

  /**
   * Makes this CP durable: flush and fdatasync the blocks, then write the
   * superblock into its slot and fdatasync again. Returns the new superblock.
   */
  async commit(sb: Superblock): Promise<Superblock> {
    this.#assertOpen();
    const committed = { ...sb, blockCount: Math.max(sb.blockCount, this.#blockCount) };
    assertSuccessor(this.#volume.superblock, committed);
    this.flush();
    await this.#volume.sync();
    await this.#volume.writeSuperblock(encodeSuperblock(committed), this.cp);
    this.#finish(committed);
    return committed;
  }

  /**
   * Commits a superblock encoded elsewhere (the destination writes the source's
   * bytes so both images are identical).
   */
  async commitEncoded(bytes: Uint8Array): Promise<Superblock> {
    const sb = decodeSuperblock(bytes);
    if (sb === null || sb.cp !== this.cp) throw new Error(`invalid superblock for CP ${this.cp}`);
    assertSuccessor(this.#volume.superblock, sb);
    this.flush();
    await this.#volume.sync();
    await this.#volume.writeSuperblock(bytes, this.cp);
    this.#finish(sb);
    return sb;
  }

  /**
   * Commits a catch-up ({@link Volume.beginCatchUp}) with the source's superblock
   * `bytes`; `live` is every block of the new tree (the caller walked it). The
   * superblock goes to the slot not holding the committed (base) CP, so a torn
   * write falls back to the base, never to an older CP.
   */
  async commitCatchUp(bytes: Uint8Array, live: Bitmap, baseCp: number): Promise<Superblock> {
    this.#assertOpen();
    const sb = decodeSuperblock(bytes);
    if (sb === null || sb.cp !== this.cp) throw new Error(`invalid superblock for CP ${this.cp}`);
    const base = this.#volume.superblock;
    // A baseline over a rejoining old source's CP replaces a history, it does not extend it.
    const replaces = baseCp === 0 && base.cp > 0;
    this.flush();
    await this.#volume.sync();
    // Paired assertions right before the superblock write (as TigerBeetle's write_header).
    assert(replaces || sb.cp > base.cp, `catch-up to CP ${sb.cp} over CP ${base.cp}`);
    assert(
      base.cp === 0 || equalBytes(sb.volumeId, base.volumeId),
      "a catch-up keeps the volume id of a destination that holds a CP",
    );
    assert(sb.pairGeneration >= base.pairGeneration, "a catch-up never lowers the generation");
    assert(
      replaces || sb.lsnCovered >= base.lsnCovered,
      "a catch-up never moves lsnCovered back",
    );
    const overwritten = decodeSuperblock(this.#volume.readBlock(this.#volume.nextSlot));
    assert(overwritten?.cp !== base.cp, "a catch-up never overwrites the base CP's slot");
    for (let i = 0; i < SUPERBLOCK_SLOTS; i++) live.set(i);
    await this.#volume.writeSuperblock(bytes, this.cp);
    this.#done = true;
    this.#volume.finishCp(this, sb, live, replaces);
    return sb;
  }

  /** Abandons the CP: its blocks stay free space; the committed CP is untouched. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#pending.clear();
    this.#volume.finishCp(this, null, null);
  }

  #finish(sb: Superblock): void {
    this.#done = true;
    // Released blocks stay in use until the store frees them (Volume.free): the
    // mirror must commit this CP and older readers must finish first.
    const live = this.#live.clone();
    for (let r = 0; r < this.written.count; r++) live.set(this.written.block(r));
    this.#volume.finishCp(this, sb, live);
  }

  #claim(block: number): void {
    this.#inUse.set(block);
    this.#blockCount = Math.max(this.#blockCount, block + 1);
  }

  #assertOpen(): void {
    if (this.#done) throw new Error("invariant: CP already committed or aborted");
  }
}

function readAt(ops: FileSystem, fd: number, block: number): Uint8Array {
  const buf = new Uint8Array(BLOCK_SIZE);
  ops.readSync(fd, buf, 0, BLOCK_SIZE, block * BLOCK_SIZE);
  return buf;
}

/**
 * Positioned write of all of `buf`; `grown` hears the file offset reached
 * after each (possibly short) write. Synchronous on purpose: a write lands in
 * the page cache in microseconds per block, far cheaper than an async op's
 * round trip; only fdatasync, which waits for the disk, runs off the thread.
 */
function pwrite(
  ops: FileSystem,
  fd: number,
  buf: Uint8Array,
  position: number,
  grown?: (end: number) => void,
): void {
  for (let done = 0; done < buf.length;) {
    done += ops.writeSync(fd, buf, done, buf.length - done, position + done);
    grown?.(position + done);
  }
}

/** A group of adjacent views at least this long is written as it is; shorter ones are copied. */
const DIRECT_BLOCKS = 16;

/**
 * The bytes of `views` one after another, as consecutive pieces to write:
 * views that lie side by side in one buffer (a run of blocks read from one
 * log record, the common case of a big write) as they are, when there are at
 * least {@link DIRECT_BLOCKS} of them; the rest copied together, so that
 * scattered blocks still cost one write, not one each.
 */
function joined(views: Uint8Array[]): Uint8Array[] {
  const adjacent = (k: number) =>
    views[k].buffer === views[k - 1].buffer &&
    views[k].byteOffset === views[k - 1].byteOffset + views[k - 1].length;
  /** The end of the group of adjacent views from `k`. */
  const groupEnd = (k: number) => {
    let m = k + 1;
    while (m < views.length && adjacent(m)) m++;
    return m;
  };
  const out: Uint8Array[] = [];
  for (let k = 0; k < views.length;) {
    let m = groupEnd(k);
    if (m - k >= DIRECT_BLOCKS) {
      out.push(new Uint8Array(views[k].buffer, views[k].byteOffset, (m - k) * BLOCK_SIZE));
      k = m;
      continue;
    }
    // Gather the short groups that follow, up to a long one (written as it is, next).
    while (m < views.length) {
      const end = groupEnd(m);
      if (end - m >= DIRECT_BLOCKS) break;
      m = end;
    }
    const copy = new Uint8Array((m - k) * BLOCK_SIZE);
    for (let c = k; c < m; c++) copy.set(views[c], (c - k) * BLOCK_SIZE);
    out.push(copy);
    k = m;
  }
  return out;
}

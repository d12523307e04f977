/**
 * BLAKE3-256 in wasm: whole inputs, streams, and batches of 4 KiB blocks.
 *
 * A refsync block (4096 bytes) is exactly four BLAKE3 chunks; full blocks are hashed four
 * chunks at a time in SIMD lanes. Two different digests exist per block:
 * - the *standalone* digest (BLAKE3 of the 4096 bytes alone): the block index key, the same
 *   wherever the block occurs;
 * - the *in-stream* chaining value of the block inside an object: it feeds the object's
 *   BLAKE3 (ETag). It depends on the block's position (the chunk counter enters every
 *   compression), so for blocks other than the first both are computed from the same bytes.
 *
 * @module
 */

import { BLOCK_SIZE } from "../bytes/mod.ts";
import {
  type BlockDiffExports,
  check,
  instantiate,
  MemoryView,
  shared,
} from "../wasm/block-diff.ts";

/**
 * Bytes of a BLAKE3-256 digest.
 *
 * @example
 * ```ts
 * const digests = hashBlocks(new Uint8Array(3 * 4096));
 * const third = digests.subarray(2 * DIGEST_SIZE, 3 * DIGEST_SIZE);
 * ```
 */
export const DIGEST_SIZE = 32;

/** Blocks per wasm call of the shared hasher: 1 MiB of input area. */
const SHARED_CAPACITY = 256;
/** Stack entries reserved in wasm (layout.ts STACK_ENTRIES). */
const STACK_ENTRIES = 64;

/** Pointers of an instance set up for the hashing role; fixed after setup. */
class HashKernel {
  readonly x: BlockDiffExports;
  readonly mem: MemoryView;
  readonly capacity: number;
  readonly input: number;
  readonly digests: number;
  readonly cvs: number;
  readonly stack: number;
  readonly out: number;

  constructor(x: BlockDiffExports, capacity: number) {
    this.x = x;
    this.capacity = capacity;
    this.input = x.hasherSetup(capacity);
    if (this.input === 0) throw new RangeError(`cannot reserve ${capacity} blocks of wasm memory`);
    this.mem = new MemoryView(x.memory);
    this.digests = x.hasherDigests();
    this.cvs = x.hasherCVs();
    this.stack = x.stackPtr();
    this.out = x.outPtr();
  }

  /** A fresh copy of the 32-byte result area. */
  result(): Uint8Array {
    return this.mem.u8.slice(this.out, this.out + DIGEST_SIZE);
  }
}

const kernel = new HashKernel(shared, SHARED_CAPACITY);

/** The shared instance, for diff.ts (same memory; its diff regions are separate). */
export const sharedKernel: { x: BlockDiffExports; mem: MemoryView } = kernel;

/**
 * Standard BLAKE3-256 of `data`, any length (GiBs in one call are fine: the input is fed to
 * wasm 1 MiB at a time).
 *
 * @example
 * ```ts
 * const d = blake3(new TextEncoder().encode("abc"));
 * d.toHex(); // "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
 * ```
 */
export function blake3(data: Uint8Array): Uint8Array {
  if (data.length <= BLOCK_SIZE) {
    // One subtree of at most 4 chunks with the root flag: no stream state needed.
    kernel.mem.u8.set(data, kernel.input);
    kernel.x.streamFinish(0, 0, data.length, 0);
    return kernel.result();
  }
  const h = new Blake3Hasher({ blockDigests: false });
  h.update(data);
  return h.digest();
}

/**
 * Options of {@link Blake3Hasher}.
 *
 * @example
 * ```ts
 * const etagOnly = new Blake3Hasher({ blockDigests: false });
 * ```
 */
export interface Blake3HasherOptions {
  /**
   * Compute the standalone digest of each full aligned block (returned by `update`). Default
   * true; false halves the work when only the object digest is wanted.
   */
  blockDigests?: boolean;
}

const NO_DIGESTS = new Uint8Array(0);

/**
 * Incremental BLAKE3 over a stream, any chunking. Full 4 KiB blocks at 4 KiB-aligned stream
 * positions go through the SIMD batch path. `update()` returns the standalone BLAKE3 digests
 * (32 bytes each, concatenated, a fresh copy) of every full 4 KiB block at a 4 KiB-aligned
 * stream position that this call COMPLETED (a block begun in an earlier call and completed in
 * this one counts here), so one pass over the bytes gives both the object's hash (ETag) and
 * its block digests for the block index.
 *
 * `digest()` does not end the stream: more `update()` calls may follow.
 *
 * @example
 * ```ts
 * const h = new Blake3Hasher();
 * const blocks = h.update(new Uint8Array(5000)); // 32 bytes: the digest of block 0
 * h.update(new Uint8Array(3192)); // completes block 1: returns its digest
 * const etag = h.digest().toHex(); // same as blake3(new Uint8Array(8192)).toHex()
 * ```
 */
export class Blake3Hasher {
  readonly #blockDigests: boolean;
  /** CVs of complete subtrees, largest first: one per set bit of #blocks. */
  readonly #stack = new Uint8Array(STACK_ENTRIES * DIGEST_SIZE);
  #stackLen = 0;
  /** Full blocks pushed onto the stack. */
  #blocks = 0;
  /**
   * A full block that ended exactly at the end of the data so far. Its CV is pushed only when
   * more bytes arrive: if the stream ends here, it is the right edge of the tree (and, as
   * block 0, the root).
   */
  #pending = false;
  readonly #pendingCV = new Uint8Array(DIGEST_SIZE);
  readonly #pendingDigest = new Uint8Array(DIGEST_SIZE);
  /** Bytes of the current, incomplete block. */
  readonly #buf = new Uint8Array(BLOCK_SIZE);
  #bufLen = 0;
  #length = 0;

  /** @param options `blockDigests: false` when the block digests are not needed. */
  constructor(options: Blake3HasherOptions = {}) {
    this.#blockDigests = options.blockDigests ?? true;
  }

  /**
   * Bytes hashed so far.
   *
   * @example
   * ```ts
   * const h = new Blake3Hasher();
   * h.update(new Uint8Array(10));
   * h.length; // 10
   * ```
   */
  get length(): number {
    return this.#length;
  }

  /**
   * Feeds `data`; returns the standalone digests of the aligned 4 KiB blocks it completed
   * (empty when none, or when constructed with `blockDigests: false`).
   *
   * @example
   * ```ts
   * import { BLOCK_SIZE } from "../bytes/mod.ts";
   * import { BlockIndex } from "../block-index/mod.ts";
   * const hasher = new Blake3Hasher();
   * const index = new BlockIndex();
   * const chunk = new Uint8Array(3 * BLOCK_SIZE);
   * const location = 0;
   * const digests = hasher.update(chunk);
   * for (let i = 0; i < digests.length; i += DIGEST_SIZE) {
   *   index.insert(digests.subarray(i, i + DIGEST_SIZE), location + (i / DIGEST_SIZE) * BLOCK_SIZE);
   * }
   * ```
   */
  update(data: Uint8Array): Uint8Array {
    const n = data.length;
    if (n === 0) return NO_DIGESTS.slice();
    const completed = Math.floor((this.#bufLen + n) / BLOCK_SIZE);
    const out = this.#blockDigests ? new Uint8Array(completed * DIGEST_SIZE) : NO_DIGESTS;
    let outPos = 0;
    const { x, mem } = kernel;
    mem.u8.set(this.#stack.subarray(0, this.#stackLen * DIGEST_SIZE), kernel.stack);
    let len = this.#stackLen;
    if (this.#pending) {
      // More bytes follow the pending block: it is a complete left subtree now.
      mem.u8.set(this.#pendingCV, kernel.cvs);
      len = x.streamPush(len, 0, 1, this.#blocks);
      this.#blocks++;
      this.#pending = false;
    }
    let pos = 0;
    if (this.#bufLen > 0) {
      pos = Math.min(BLOCK_SIZE - this.#bufLen, n);
      this.#buf.set(data.subarray(0, pos), this.#bufLen);
      this.#bufLen += pos;
      if (this.#bufLen === BLOCK_SIZE) {
        mem.u8.set(this.#buf, kernel.input);
        len = this.#run(1, pos === n, len, out, outPos);
        outPos += DIGEST_SIZE;
        this.#bufLen = 0;
      }
    }
    while (n - pos >= BLOCK_SIZE) {
      const m = Math.min(kernel.capacity, Math.floor((n - pos) / BLOCK_SIZE));
      mem.u8.set(data.subarray(pos, pos + m * BLOCK_SIZE), kernel.input);
      pos += m * BLOCK_SIZE;
      len = this.#run(m, pos === n, len, out, outPos);
      outPos += m * DIGEST_SIZE;
    }
    if (pos < n) {
      this.#buf.set(data.subarray(pos), 0);
      this.#bufLen = n - pos;
    }
    this.#stack.set(mem.u8.subarray(kernel.stack, kernel.stack + len * DIGEST_SIZE));
    this.#stackLen = len;
    this.#length += n;
    if (this.#blockDigests && outPos !== out.length) throw new Error("Blake3Hasher: lost digests");
    return out;
  }

  /** Hashes the m blocks in the input area (stream blocks #blocks...), pushes their CVs. */
  #run(m: number, endsData: boolean, len: number, out: Uint8Array, outPos: number): number {
    const { x, mem } = kernel;
    x.streamBlocks(m, this.#blocks, this.#blockDigests ? 1 : 0);
    const u8 = mem.u8;
    if (this.#blockDigests) {
      out.set(u8.subarray(kernel.digests, kernel.digests + m * DIGEST_SIZE), outPos);
    }
    const push = endsData ? m - 1 : m;
    if (push > 0) {
      len = x.streamPush(len, 0, push, this.#blocks);
      this.#blocks += push;
    }
    if (endsData) {
      const cv = kernel.cvs + push * DIGEST_SIZE;
      const dg = kernel.digests + push * DIGEST_SIZE;
      this.#pendingCV.set(u8.subarray(cv, cv + DIGEST_SIZE));
      this.#pendingDigest.set(u8.subarray(dg, dg + DIGEST_SIZE));
      this.#pending = true;
    }
    return len;
  }

  /**
   * BLAKE3-256 of all bytes so far (a fresh copy). The hasher stays usable.
   *
   * @example
   * ```ts
   * const hasher = new Blake3Hasher({ blockDigests: false });
   * hasher.update(new TextEncoder().encode("hello"));
   * const etag = hasher.digest().toHex();
   * ```
   */
  digest(): Uint8Array {
    if (this.#pending && this.#stackLen === 0) {
      // The stream is exactly block 0: its standalone digest is the root.
      return this.#pendingDigest.slice();
    }
    const { x, mem } = kernel;
    const u8 = mem.u8;
    u8.set(this.#stack.subarray(0, this.#stackLen * DIGEST_SIZE), kernel.stack);
    if (this.#pending) {
      u8.set(this.#pendingCV, kernel.stack + this.#stackLen * DIGEST_SIZE);
      x.streamFinish(this.#stackLen, 1, 0, 0);
    } else {
      u8.set(this.#buf.subarray(0, this.#bufLen), kernel.input);
      x.streamFinish(this.#stackLen, 0, this.#bufLen, this.#blocks);
    }
    return kernel.result();
  }
}

/**
 * Standalone BLAKE3 digest of each 4 KiB block of `data` (`data.length` a multiple of
 * 4096): n * 32 bytes, a fresh copy.
 *
 * @example
 * ```ts
 * import { BLOCK_SIZE } from "../bytes/mod.ts";
 * const digests = hashBlocks(new Uint8Array(3 * BLOCK_SIZE)); // 96 bytes
 * ```
 */
export function hashBlocks(data: Uint8Array): Uint8Array {
  check(
    data.length % BLOCK_SIZE === 0,
    `hashBlocks: length ${data.length} is not a multiple of 4096`,
  );
  const n = data.length / BLOCK_SIZE;
  const out = new Uint8Array(n * DIGEST_SIZE);
  const { x, mem } = kernel;
  for (let done = 0; done < n;) {
    const m = Math.min(kernel.capacity, n - done);
    const u8 = mem.u8;
    u8.set(data.subarray(done * BLOCK_SIZE, (done + m) * BLOCK_SIZE), kernel.input);
    x.hashBlocks(m);
    out.set(u8.subarray(kernel.digests, kernel.digests + m * DIGEST_SIZE), done * DIGEST_SIZE);
    done += m;
  }
  return out;
}

/**
 * Zero-copy batch face: write up to `capacity` blocks into `input(n)`, call `hash(n)`, read
 * the digests it returns. Both are views into wasm memory, valid until the next call on this
 * BlockHasher (each BlockHasher owns a wasm instance, so others never touch them).
 *
 * @example
 * ```ts
 * const bh = new BlockHasher(64);
 * const input = bh.input(2); // 8192 bytes of wasm memory
 * input.fill(7);             // e.g. file.readSync(input)
 * const digests = bh.hash(2); // 64 bytes: digest of block 0, then of block 1
 * ```
 */
export class BlockHasher {
  /**
   * Most blocks per call.
   *
   * @example
   * ```ts
   * const bh = new BlockHasher(256);
   * const blocksLeft = 1000;
   * const n = Math.min(bh.capacity, blocksLeft);
   * ```
   */
  readonly capacity: number;
  readonly #k: HashKernel;

  /** @param capacity blocks per call (default 256 = 1 MiB), 1..65536. */
  constructor(capacity = 256) {
    check(
      Number.isInteger(capacity) && capacity >= 1 && capacity <= 65536,
      `BlockHasher: capacity ${capacity} not in 1..65536`,
    );
    this.capacity = capacity;
    this.#k = new HashKernel(instantiate(), capacity);
  }

  #count(n: number): void {
    check(
      Number.isInteger(n) && n >= 0 && n <= this.capacity,
      `BlockHasher: ${n} blocks not in 0..${this.capacity}`,
    );
  }

  /**
   * The input area for `n` blocks (n * 4096 bytes of wasm memory) to write blocks into.
   *
   * @example
   * ```ts
   * const bh = new BlockHasher(256);
   * using file = await Deno.open(Deno.execPath());
   * const read = file.readSync(bh.input(bh.capacity)); // the kernel writes into wasm memory
   * ```
   */
  input(n: number): Uint8Array {
    this.#count(n);
    return this.#k.mem.u8.subarray(this.#k.input, this.#k.input + n * BLOCK_SIZE);
  }

  /**
   * Hashes the first `n` blocks of the input area; returns their digests (n * 32 bytes).
   *
   * @example
   * ```ts
   * const bh = new BlockHasher(256);
   * const n = 16;
   * const digests = bh.hash(n); // view: copy (digests.slice()) to keep past the next call
   * ```
   */
  hash(n: number): Uint8Array {
    this.#count(n);
    this.#k.x.hashBlocks(n);
    return this.#k.mem.u8.subarray(this.#k.digests, this.#k.digests + n * DIGEST_SIZE);
  }
}

/**
 * Loads the block-diff wasm module (built by `deno task build:wasm`) and types its exports.
 *
 * The module is compiled once; each role (the shared hasher, each {@link BlockHasher}, each
 * {@link BlockIndex}, each anchor finder) gets its own instance and therefore its own linear memory, so no role
 * can move or overwrite another's regions.
 *
 * @module
 */

const WASM_URL = new URL("../../wasm/block-diff/build/block-diff.wasm", import.meta.url);

/** Exports of wasm/block-diff/assembly/index.ts. Pointers are byte offsets into `memory`. */
export interface BlockDiffExports {
  memory: WebAssembly.Memory;
  // hashing role (hasher.ts)
  hasherSetup(capacity: number): number;
  hasherInput(): number;
  hasherDigests(): number;
  hasherCVs(): number;
  stackPtr(): number;
  outPtr(): number;
  hashBlocks(n: number): void;
  streamBlocks(n: number, first: number, wantDigests: number): void;
  streamPush(len: number, from: number, n: number, blocksBefore: number): number;
  streamFinish(len: number, lastIsCV: number, lastLen: number, blockIndex: number): void;
  // block index role (table.ts)
  indexSetup(
    initial: number,
    batch: number,
    s0: number,
    s1: number,
    s2: number,
    s3: number,
  ): number;
  indexBatchKeys(): number;
  indexBatchValues(): number;
  indexKey(): number;
  indexSize(): number;
  indexSlots(): number;
  indexInsert(location: number): number;
  indexLookup(): number;
  indexRemove(): number;
  indexInsertBatch(n: number): number;
  indexLookupBatch(n: number): void;
  indexRemoveBatch(n: number): number;
  indexClear(): void;
  // diff (diff.ts)
  diffA(): number;
  diffB(): number;
  diffOut(): number;
  diffBlocks(): number;
  isZeroBlock(ptr: number): number;
  // anchors (anchors.ts)
  anchorSetup(capacity: number, maxAnchors: number): number;
  anchorInput(): number;
  anchorOutput(): number;
  anchorFind(len: number, bits: number): number;
}

async function load(): Promise<WebAssembly.WebAssemblyInstantiatedSource> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(WASM_URL);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `block-diff wasm module not found at ${WASM_URL.pathname}: run \`deno task build:wasm\``,
      );
    }
    throw e;
  }
  return await WebAssembly.instantiate(bytes, {});
}

const loaded = await load();

/** A fresh instance of the module (own memory), e.g. for one BlockIndex. */
export function instantiate(): BlockDiffExports {
  return new WebAssembly.Instance(loaded.module, {}).exports as unknown as BlockDiffExports;
}

/** The first instance, used by the shared hashing and diff functions. */
export const shared: BlockDiffExports = loaded.instance.exports as unknown as BlockDiffExports;

/**
 * Byte view of an instance's memory that survives `memory.grow`: growing detaches the old
 * ArrayBuffer, so the view is re-created whenever the buffer changed.
 */
export class MemoryView {
  #memory: WebAssembly.Memory;
  #u8: Uint8Array;
  #f64: Float64Array;

  constructor(memory: WebAssembly.Memory) {
    this.#memory = memory;
    this.#u8 = new Uint8Array(memory.buffer);
    this.#f64 = new Float64Array(memory.buffer);
  }

  // A grown memory detaches its old buffer, and a detached view has length 0: a cheaper test
  // than comparing with `memory.buffer` on every call of the hot paths.

  /** Bytes of the whole memory; call again after any export that can grow memory. */
  get u8(): Uint8Array {
    if (this.#u8.length === 0) this.#u8 = new Uint8Array(this.#memory.buffer);
    return this.#u8;
  }

  /** f64 view of the whole memory; index = byte offset / 8. */
  get f64(): Float64Array {
    if (this.#f64.length === 0) this.#f64 = new Float64Array(this.#memory.buffer);
    return this.#f64;
  }
}

/** Throws a TypeError unless `cond`; for argument invariants of the public API. */
export function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new TypeError(message);
}

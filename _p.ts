import { BlockHasher, BlockIndex, hashBlocks, Blake3Hasher, blake3 } from "./src/block-index/mod.ts";
import { hash as jitHash, warmupSimd } from "npm:blake3-jit@1.1.0";
warmupSimd();
const bh = new BlockHasher(256);
const inp = bh.input(256); for (let i = 0; i < inp.length; i++) inp[i] = (i * 2654435761) >>> 24;
function time(name: string, bytes: number, fn: () => void) {
  for (let i = 0; i < 3; i++) fn();
  let best = Infinity;
  for (let r = 0; r < 5; r++) { const t = performance.now(); fn(); best = Math.min(best, performance.now() - t); }
  console.log(name, (bytes / best / 1e3).toFixed(0), "MB/s");
}
time("BlockHasher", 256*4096*20, () => { for (let i = 0; i < 20; i++) bh.hash(256); });
const big = inp.slice();
time("blake3() 1MiB", 20*(1<<20), () => { for (let i = 0; i < 20; i++) blake3(big); });
time("Blake3Hasher 1MiB", 20*(1<<20), () => { for (let i = 0; i < 20; i++) new Blake3Hasher().update(big); });
const blocks = Array.from({length: 256}, (_, i) => big.subarray(i*4096, i*4096+4096));
time("jit 4K", 20*(1<<20), () => { for (let i = 0; i < 20; i++) for (const b of blocks) jitHash(b); });
time("jit 1MiB", 20*(1<<20), () => { for (let i = 0; i < 20; i++) jitHash(big); });
time("blake3() 4K", 20*(1<<20), () => { for (let i = 0; i < 20; i++) for (const b of blocks) blake3(b); });

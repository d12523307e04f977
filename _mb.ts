import { BlockHasher } from "./src/block-index/mod.ts";
const bh = new BlockHasher(256);
const inp = bh.input(256); for (let i = 0; i < inp.length; i++) inp[i] = (i * 2654435761) >>> 24;
let best = Infinity;
for (let r = 0; r < 40; r++) { const t = performance.now(); for (let i = 0; i < 10; i++) bh.hash(256); best = Math.min(best, performance.now() - t); }
console.log("BlockHasher", (256*4096*10 / best / 1e3).toFixed(0), "MB/s");

import { BlockHasher } from "./src/block-index/mod.ts";
const bh = new BlockHasher(4);
for (let i = 0; i < 20000; i++) bh.hash(4);

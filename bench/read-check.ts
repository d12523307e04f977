/**
 * What checking every block on read costs (`deno task bench:read`): a 64 MiB
 * object is written and committed in a temporary store, then read whole
 * (page cache warm) through `ObjectStore.read`, which checks each block
 * against its map entry, and the check alone (BLAKE3 of each block, one wasm
 * call per block as the read path makes them, and batched for comparison)
 * is timed over the same blocks. Prints the throughputs and the check's share
 * of a read. MB = 10^6 bytes.
 *
 * @module
 */
import { BLOCK_SIZE } from "../src/bytes/mod.ts";
import { blake3, hashBlocks } from "../src/hash/blake3.ts";
import { ObjectStore } from "../src/storage/objects/store.ts";
import { checkOf } from "../src/storage/volume/check.ts";
import { fillXorshift } from "./lib/prng.ts";

const OBJECT_BYTES = 64 << 20;
const ROUNDS = 5;

/** Best-of-ROUNDS seconds of `fn`. */
async function best(fn: () => unknown): Promise<number> {
  let min = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    await fn();
    min = Math.min(min, (performance.now() - t) / 1000);
  }
  return min;
}

const mbps = (seconds: number) => (OBJECT_BYTES / 1e6 / seconds).toFixed(0);

const dir = await Deno.makeTempDir({ prefix: "refsync-bench-read-" });
try {
  const store = await ObjectStore.open(dir, { cpDirtyBytes: 1 << 30, maxObjectBytes: 1 << 30 });
  try {
    const bytes = new Uint8Array(OBJECT_BYTES);
    fillXorshift(bytes, 0x5eed);
    await store.write("o", ReadableStream.from([bytes]), { replace: true, offset: 0 });
    await store.checkpoint();
    const read = await best(async () => {
      for await (const _ of store.read("o", 0, OBJECT_BYTES)) { /* drained */ }
    });
    const blocks = OBJECT_BYTES / BLOCK_SIZE;
    let sink = 0n;
    const perBlock = await best(() => {
      for (let b = 0; b < blocks; b++) {
        sink ^= checkOf(blake3(bytes.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE)));
      }
    });
    const batched = await best(() => {
      for (let b = 0; b < blocks; b += 256) {
        sink ^= BigInt(hashBlocks(bytes.subarray(b * BLOCK_SIZE, (b + 256) * BLOCK_SIZE))[0]);
      }
    });
    console.log(`read through the store (checked): ${mbps(read)} MB/s`);
    console.log(`block checks alone, per block:    ${mbps(perBlock)} MB/s`);
    console.log(`block checks alone, batched:      ${mbps(batched)} MB/s`);
    console.log(`check share of a read:            ${(100 * perBlock / read).toFixed(0)}%`);
    if (sink === -1n) console.log(""); // keeps the hashing from being optimised away
  } finally {
    await store.close();
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}

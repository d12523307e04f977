/**
 * Looking into (and damaging) an appliance's data dir from the outside, for
 * fault-injection tests: the NVLOG segments (`DIR/log/<first lsn hex>.seg`,
 * frames as in src/protocol/log-frame/constants.ts) and the two superblock
 * slots (blocks 0 and 1 of `DIR/volume.dat`, 4096 bytes each, CP n in slot
 * n % 2). The walking and parsing here are independent of src/ (they read
 * only the documented byte layout); the layout's constants are src's own.
 *
 * @module
 */
import { BLOCK_SIZE } from "../../src/bytes/mod.ts";
import { HEADER_SIZE, Off } from "../../src/protocol/log-frame/mod.ts";

/** One frame found in a segment file. */
export interface FrameInfo {
  /** File offset of the frame's first byte. */
  offset: number;
  frameLength: number;
  lsn: number;
  op: number;
  flags: number;
  keyLength: number;
  payloadLength: number;
  txn: number;
  key: string;
}

/** The segment files of `dir/log`, oldest first (full paths). */
export function segmentPaths(dataDir: string): string[] {
  return [...Deno.readDirSync(`${dataDir}/log`)]
    .filter((e) => e.isFile && /^[0-9a-f]{16}\.seg$/.test(e.name))
    .map((e) => e.name)
    .sort()
    .map((n) => `${dataDir}/log/${n}`);
}

/**
 * Walks the frames of a segment by their length fields (no checksum
 * verification: the file is expected to be whole). Throws when a frame does
 * not fit the file.
 */
export function readFrames(path: string): FrameInfo[] {
  const bytes = Deno.readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: FrameInfo[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + HEADER_SIZE > bytes.length) throw new Error(`${path}: partial header at ${at}`);
    const frameLength = view.getUint32(at + Off.frameLength, true);
    const keyLength = view.getUint16(at + Off.keyLength, true);
    if (frameLength < HEADER_SIZE || at + frameLength > bytes.length) {
      throw new Error(`${path}: frame at ${at} of ${frameLength} bytes does not fit the file`);
    }
    frames.push({
      offset: at,
      frameLength,
      lsn: Number(view.getBigUint64(at + Off.lsn, true)),
      op: bytes[at + Off.op],
      flags: bytes[at + Off.flags],
      keyLength,
      payloadLength: view.getUint32(at + Off.payloadLength, true),
      txn: Number(view.getBigUint64(at + Off.txn, true)),
      key: new TextDecoder().decode(
        bytes.subarray(at + HEADER_SIZE, at + HEADER_SIZE + keyLength),
      ),
    });
    at += frameLength;
  }
  return frames;
}

/** The last frame of the last segment, with its segment's path. */
export function lastFrame(dataDir: string): { path: string; frame: FrameInfo; fileSize: number } {
  const paths = segmentPaths(dataDir);
  for (let i = paths.length - 1; i >= 0; i--) {
    const frames = readFrames(paths[i]);
    if (frames.length > 0) {
      return {
        path: paths[i],
        frame: frames[frames.length - 1],
        fileSize: Deno.statSync(paths[i]).size,
      };
    }
  }
  throw new Error(`${dataDir}/log holds no frame`);
}

/** Flips bit `bit` (0..7) of the byte at `offset` of the file. */
export function flipBit(path: string, offset: number, bit = 0): void {
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    const b = new Uint8Array(1);
    f.seekSync(offset, Deno.SeekMode.Start);
    if (f.readSync(b) !== 1) throw new Error(`${path}: no byte at ${offset}`);
    b[0] ^= 1 << bit;
    f.seekSync(offset, Deno.SeekMode.Start);
    f.writeSync(b);
  } finally {
    f.close();
  }
}

/** Overwrites `bytes.length` bytes of the file at `offset`. */
export function overwrite(path: string, offset: number, bytes: Uint8Array): void {
  const f = Deno.openSync(path, { read: true, write: true });
  try {
    f.seekSync(offset, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) done += f.writeSync(bytes.subarray(done));
  } finally {
    f.close();
  }
}

/** Cuts the file to `size` bytes. */
export function truncateFile(path: string, size: number): void {
  Deno.truncateSync(path, size);
}

/** The CP number a superblock slot claims (bytes 40..48), without verifying its checksum. */
export function slotCp(dataDir: string, slot: number): number {
  const f = Deno.openSync(`${dataDir}/volume.dat`, { read: true });
  try {
    const b = new Uint8Array(BLOCK_SIZE);
    f.seekSync(slot * BLOCK_SIZE, Deno.SeekMode.Start);
    let got = 0;
    while (got < BLOCK_SIZE) {
      const n = f.readSync(b.subarray(got));
      if (n === null) break;
      got += n;
    }
    return Number(new DataView(b.buffer).getBigUint64(40, true));
  } finally {
    f.close();
  }
}

/** The blocks of `DIR/volume.dat` whose 4096 bytes equal `block`, found by content (no map parsing). */
export function blocksHolding(dataDir: string, block: Uint8Array): number[] {
  const file = Deno.readFileSync(`${dataDir}/volume.dat`);
  const found: number[] = [];
  for (let b = 2; (b + 1) * BLOCK_SIZE <= file.length; b++) {
    let same = true;
    for (let i = 0; i < BLOCK_SIZE && same; i++) same = file[b * BLOCK_SIZE + i] === block[i];
    if (same) found.push(b);
  }
  return found;
}

/**
 * Flips one bit of the volume block holding file block `fb` of an object whose
 * bytes are `content` (it must be there exactly once); returns the block's number.
 */
export function damageFileBlock(dataDir: string, content: Uint8Array, fb: number): number {
  const found = blocksHolding(dataDir, content.subarray(fb * BLOCK_SIZE, (fb + 1) * BLOCK_SIZE));
  if (found.length !== 1) {
    throw new Error(`file block ${fb} is in ${dataDir}/volume.dat ${found.length} times, not once`);
  }
  flipBit(`${dataDir}/volume.dat`, found[0] * BLOCK_SIZE + 777, 5);
  return found[0];
}

/**
 * The blocks of `DIR/volume.dat` that look like block map nodes of `level`
 * (their 8-byte header: magic "BM", the level, zeros), found by content;
 * freed old versions count too, so use it on a volume written once.
 */
export function mapBlocksOf(dataDir: string, level: number): number[] {
  const file = Deno.readFileSync(`${dataDir}/volume.dat`);
  const head = [0x42, 0x4d, level, 0, 0, 0, 0, 0];
  const found: number[] = [];
  for (let b = 2; (b + 1) * BLOCK_SIZE <= file.length; b++) {
    if (head.every((x, i) => file[b * BLOCK_SIZE + i] === x)) found.push(b);
  }
  return found;
}

/**
 * Offline check of a data directory's committed CP (`refsync verify`): every
 * catalog node decodes and passes its checksum, every map and data block
 * matches the checksum in its map entry (the damaged ones are listed with the
 * key they belong to), every object's bytes hash to its ETag, and no block is
 * referenced twice.
 *
 * @module
 */
import { BLOCK_SIZE, equalBytes } from "../bytes/mod.ts";
import { Blake3Hasher } from "../hash/blake3.ts";
import { RefsyncError } from "../errors/mod.ts";
import { lookupRange } from "./blockmap/blockmap.ts";
import { DataDir } from "./datadir/mod.ts";
import { EtagHasher } from "./objects/etag.ts";
import { isKnownEtag } from "./objects/record.ts";
import { blockCheck, CorruptBlockError, type CorruptKind } from "./volume/check.ts";
import { Volume } from "./volume/volume.ts";
import { walkLive } from "./walk.ts";

/** What `verify` found. */
export interface VerifyReport {
  ok: boolean;
  cp: number;
  digest: string;
  objects: number;
  bytes: number;
  blocks: number;
  /** Blocks that do not match the checksum in their map entry, with their object. */
  damaged: Array<{ block: number; key: string; kind: CorruptKind }>;
  errors: string[];
}

/**
 * `refsync verify`: verifies the data directory of a stopped appliance. It
 * holds the directory's lock meanwhile, so it refuses a directory a running
 * appliance holds: that one commits CPs meanwhile and reuses the blocks of
 * older ones, which would show as damage that is not there.
 *
 * @example
 * ```ts
 * const report = await verifyDataDir("data/source");
 * if (!report.ok) console.error(report.errors);
 * ```
 */
export async function verifyDataDir(dir: string): Promise<VerifyReport> {
  const dataDir = DataDir.open(dir, { role: null, create: false });
  try {
    return await verifyVolume(dir);
  } finally {
    dataDir.close();
  }
}

/**
 * Verifies the committed CP in `dir` (read only; the log is not replayed).
 * The caller makes sure no CP commits meanwhile (see {@link verifyDataDir}).
 *
 * @example
 * ```ts
 * const report = await verifyVolume("data/source");
 * if (!report.ok) console.error(report.errors);
 * ```
 */
export async function verifyVolume(dir: string): Promise<VerifyReport> {
  let volume: Volume;
  try {
    volume = await Volume.open(`${dir}/volume.dat`, { create: false });
  } catch (e) {
    if (!(e instanceof Error && "code" in e && e.code === "ENOENT")) throw e;
    throw new RefsyncError("not_found", `${dir} holds no volume.dat: not a refsync data directory`);
  }
  const sb = volume.superblock;
  const report: VerifyReport = {
    ok: true,
    cp: sb.cp,
    digest: sb.volumeDigest.toHex(),
    objects: 0,
    bytes: 0,
    blocks: 0,
    damaged: [],
    errors: [],
  };
  const damage = (block: number, key: string, kind: CorruptKind) => {
    report.damaged.push({ block, key, kind });
    report.errors.push(new CorruptBlockError(block, kind, key).message);
  };
  const seen = new Set<number>();
  const claim = (block: number, what: string) => {
    if (seen.has(block)) report.errors.push(`block ${block} referenced twice (${what})`);
    seen.add(block);
    report.blocks++;
  };
  const dec = new TextDecoder();
  try {
    walkLive(volume, sb.catalogRoot, (b) => {
      const what = b.key === null ? "catalog node" : `${b.kind} of '${dec.decode(b.key)}'`;
      claim(b.block, what);
    }, {
      onDamaged: (block, kind, key, error) => {
        if (kind === "map") damage(block, dec.decode(key!), "map");
        else report.errors.push(`catalog: ${error.message}`);
      },
      onObject: (key, record, intact) => {
        const name = dec.decode(key);
        report.objects++;
        report.bytes += record.size;
        // A damaged map block is reported already: the blocks under it cannot be reached.
        if (!intact) return;
        try {
          const nBlocks = Math.ceil(record.size / BLOCK_SIZE);
          const zero = new Uint8Array(BLOCK_SIZE);
          /** Feeds the object's bytes to `feed`; false when a block is damaged (reported once). */
          const walk = (feed: (bytes: Uint8Array) => void, reportDamage: boolean): boolean => {
            let whole = true;
            for (let fb = 0; fb < nBlocks; fb += 256) {
              lookupRange(volume, record.map, fb, Math.min(256, nBlocks - fb)).forEach((p, k) => {
                const bytes = p.block === 0 ? zero : volume.readBlock(p.block);
                if (p.block !== 0 && blockCheck(bytes) !== p.check) {
                  whole = false;
                  if (reportDamage) damage(p.block, name, "data");
                }
                feed(bytes.subarray(0, Math.min(BLOCK_SIZE, record.size - (fb + k) * BLOCK_SIZE)));
              });
            }
            return whole;
          };
          const etag = new EtagHasher();
          const whole = walk((b) => etag.update(b), true);
          // An ETag left unknown after ranged writes is computed by readers; nothing to compare.
          // A damaged block is reported already: its ETag cannot match. An object committed
          // before the derived ETag (objects/etag.ts) carries the plain BLAKE3 of its bytes:
          // only a mismatch pays for that second pass.
          if (whole && isKnownEtag(record.etag) && !equalBytes(etag.digest(), record.etag)) {
            const plain = new Blake3Hasher({ blockDigests: false });
            walk((b) => plain.update(b), false);
            if (!equalBytes(plain.digest(), record.etag)) {
              report.errors.push(`'${name}': bytes do not hash to the stored ETag`);
            }
          }
        } catch (e) {
          report.errors.push(`'${name}': ${e instanceof Error ? e.message : e}`);
        }
      },
    });
  } catch (e) {
    report.errors.push(`catalog: ${e instanceof Error ? e.message : e}`);
  } finally {
    volume.close();
  }
  report.ok = report.errors.length === 0;
  return report;
}

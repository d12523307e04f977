/**
 * `edited`: text documents (code-like, JSON logs, prose; see content.ts)
 * uploaded, then each uploaded again a little later under a new key with a
 * short text inserted at its top (a header line, a license, a changelog
 * entry). Every block after the insertion moves off the 4 KiB grid, so
 * aligned dedup finds none of them; the forwarding path's shifted-content
 * search (src/edge-source/mirror/shift-index.ts) is what names them. A pure
 * function of the seed.
 *
 * @module
 */
import { mixSeed, Rng } from "../lib/prng.ts";
import { type ContentKind, contentOf } from "./content.ts";
import type { Op, Workload, WorkloadOptions } from "./types.ts";

const KINDS: readonly ContentKind[] = ["code", "logs", "prose"];
/** Document sizes, log-uniform. */
export const SIZE = { min: 16 * 1024, max: 2 * 2 ** 20 } as const;
/** The edited copy comes this many ops (uniform) after its original. */
export const DELAY = { min: 8, max: 64 } as const;
/** Bytes inserted at the top, log-uniform. */
export const INSERT = { min: 1, max: 2000 } as const;

interface Doc {
  kind: ContentKind;
  seed: number;
  bytes: number;
  n: number;
}

/** `edited`. */
export function edited({ seed }: WorkloadOptions): Workload {
  const content = contentOf(seed);
  const rng = new Rng(mixSeed(seed, 0xed17ed));
  const due: Array<{ at: number; doc: Doc; inserted: number; insertSeed: number }> = [];
  let ops = 0;
  let docs = 0;
  const next = (): Op => {
    const at = ops++;
    if (due.length > 0 && due[0].at <= at) {
      const { doc, inserted, insertSeed } = due.shift()!;
      return {
        key: `edited/v2/${String(doc.n).padStart(8, "0")}`,
        bytes: inserted + doc.bytes,
        body: () => {
          const out = new Uint8Array(inserted + doc.bytes);
          out.set(content.bytes("prose", insertSeed, inserted));
          out.set(content.bytes(doc.kind, doc.seed, doc.bytes), inserted);
          return out;
        },
      };
    }
    const n = docs++;
    const doc: Doc = {
      kind: KINDS[rng.int(0, KINDS.length - 1)],
      seed: mixSeed(rng.u32(), n),
      bytes: rng.logInt(SIZE.min, SIZE.max),
      n,
    };
    const when = at + rng.int(DELAY.min, DELAY.max);
    const i = due.findIndex((d) => d.at > when);
    due.splice(i < 0 ? due.length : i, 0, {
      at: when,
      doc,
      inserted: rng.logInt(INSERT.min, INSERT.max),
      insertSeed: mixSeed(rng.u32(), n),
    });
    return {
      key: `edited/v1/${String(n).padStart(8, "0")}`,
      bytes: doc.bytes,
      body: () => content.bytes(doc.kind, doc.seed, doc.bytes),
    };
  };
  return {
    name: "edited",
    summary:
      `text documents (code, JSON logs, prose; ${SIZE.min / 1024} KiB-${
        SIZE.max / 2 ** 20
      } MiB), each uploaded again ${DELAY.min}-${DELAY.max} ops later under a new key with ` +
      `${INSERT.min}-${INSERT.max} bytes inserted at its top (every block after it moved off the grid)`,
    concurrency: 8,
    setup: () => [],
    next,
  };
}

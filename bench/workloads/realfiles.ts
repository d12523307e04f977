/**
 * `realfiles`: files not made for the test. Reads a corpus of directories
 * (installed documentation, headers, man pages, a Python library by
 * default), uploads every file, uploads them all again under new keys, then
 * writes small ranged edits into some of them. The order is deterministic
 * (directories as given, entries sorted by name, depth first) and the total
 * bounded (each directory gets an equal share of `corpusBytes`; what one
 * does not use passes to the next). A benchmark workload only: tests never
 * read outside the repository.
 *
 * @module
 */
import { mixSeed, Rng } from "../lib/prng.ts";
import { contentOf, type ContentSource } from "./content.ts";
import {
  CORPUS_BYTES,
  DEFAULT_CORPUS,
  type Op,
  type Workload,
  type WorkloadOptions,
} from "./types.ts";

/** Files larger than this are left out (a body is read whole when it is sent). */
export const MAX_FILE = 16 * 2 ** 20;
/** Longer paths are left out (keys hold at most 1024 bytes). */
const MAX_PATH = 1000;
const encoder = new TextEncoder();
/** One edit per this many files. */
export const FILES_PER_EDIT = 8;
/** Longest edit, in bytes (log-uniform from 1). */
export const MAX_EDIT = 256;

/** A file of the corpus. */
export interface CorpusFile {
  path: string;
  size: number;
}

function sortedEntries(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)].sort((
      a,
      b,
    ) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return []; // Unreadable: skipped.
  }
}

/**
 * Regular files under `dirs` (symbolic links and unreadable entries skipped,
 * and names that are not valid UTF-8), in a deterministic order, at most
 * `maxBytes` in all.
 *
 * @example
 * ```ts
 * const files = listCorpus(["docs"], 2 ** 20);
 * ```
 */
export function listCorpus(dirs: readonly string[], maxBytes: number): CorpusFile[] {
  const out: CorpusFile[] = [];
  let total = 0;
  dirs.forEach((root, i) => {
    const budget = total + (maxBytes - total) / (dirs.length - i);
    const walk = (dir: string) => {
      for (const e of sortedEntries(dir)) {
        if (total >= budget) return;
        const path = `${dir}/${e.name}`;
        // Not UTF-8 (the name Deno gives cannot be opened), or too long for a key.
        if (e.name.includes("\uFFFD") || encoder.encode(path).length > MAX_PATH) continue;
        if (e.isDirectory) walk(path);
        else if (e.isFile) {
          let size: number;
          try {
            size = Deno.statSync(path).size;
          } catch {
            continue;
          }
          if (size > MAX_FILE || total + size > budget) continue;
          out.push({ path, size });
          total += size;
        }
      }
    };
    walk(root.replace(/\/+$/, ""));
  });
  return out;
}

/** The file's bytes, exactly `size` of them (a file that changed since it was listed is cut or padded). */
function readSized(file: CorpusFile): Uint8Array<ArrayBuffer> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Deno.readFileSync(file.path) as Uint8Array<ArrayBuffer>;
  } catch {
    bytes = new Uint8Array(0);
  }
  if (bytes.length === file.size) return bytes;
  const out = new Uint8Array(file.size);
  out.set(bytes.subarray(0, file.size));
  return out;
}

const listings = new Map<string, CorpusFile[]>();

/** `realfiles`. Skipped (with the reason) when no corpus directory holds a file. */
export function realfiles(opts: WorkloadOptions): Workload {
  const dirs = (opts.corpus ?? DEFAULT_CORPUS).filter((d) => {
    try {
      return Deno.statSync(d).isDirectory;
    } catch {
      return false;
    }
  });
  const maxBytes = opts.corpusBytes ?? (opts.quick ? CORPUS_BYTES.quick : CORPUS_BYTES.full);
  const id = JSON.stringify([dirs, maxBytes]);
  let files = listings.get(id);
  if (!files) listings.set(id, files = listCorpus(dirs, maxBytes));
  const total = files.reduce((a, f) => a + f.size, 0);
  // The edits' content is made here, before any run measures.
  const ops = files.length ? realfilesOps(files, opts.seed, contentOf(opts.seed)) : [];
  let next = 0;
  return {
    name: "realfiles",
    summary: `${files.length} files (${(total / 2 ** 20).toFixed(0)} MiB) of ` +
      `${dirs.join(", ") || "no directory"}: uploaded, uploaded again under new keys, then ` +
      `${Math.ceil(files.length / FILES_PER_EDIT)} ranged edits of 1-${MAX_EDIT} B`,
    concurrency: 8,
    finite: true,
    skip: files.length === 0
      ? `no file in the corpus (${(opts.corpus ?? DEFAULT_CORPUS).join(", ")})`
      : undefined,
    setup: () => [],
    next: () => ops[next++] ?? null,
  };
}

/** The object key of a file in one upload (`a` or `b`). */
function keyOf(upload: string, f: CorpusFile): string {
  return `realfiles/${upload}/${f.path.replace(/^\/+/, "")}`;
}

/** The ops of `realfiles` on `files`: upload all, upload all again, edit some. */
function realfilesOps(files: readonly CorpusFile[], seed: number, content: ContentSource): Op[] {
  const upload = (prefix: string) =>
    files.map((f): Op => ({ key: keyOf(prefix, f), bytes: f.size, body: () => readSized(f) }));
  const rng = new Rng(mixSeed(seed, 0xf11e5));
  const edits: Op[] = [];
  const editable = files.filter((f) => f.size > 0);
  for (let i = 0; i < Math.ceil(files.length / FILES_PER_EDIT) && editable.length; i++) {
    const f = editable[rng.int(0, editable.length - 1)];
    const bytes = Math.min(f.size, rng.logInt(1, MAX_EDIT));
    const contentSeed = mixSeed(seed, i);
    edits.push({
      key: keyOf(rng.chance(0.5) ? "a" : "b", f),
      bytes,
      offset: rng.int(0, f.size - bytes),
      body: () => content.bytes("prose", contentSeed, bytes),
    });
  }
  return [...upload("a"), ...upload("b"), ...edits];
}

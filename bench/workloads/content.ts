/**
 * Synthetic file content of four kinds, for the `mixed` workload (and the
 * edits of `realfiles`): source-code-like text, JSON log lines,
 * documentation-like prose, and incompressible binary (random bytes, as
 * already-compressed media or archives are).
 *
 * The text kinds draw words from seeded vocabularies with a Zipf-like
 * (log-uniform rank) distribution, as real text does, and carry unique
 * numbers, hex ids and timestamps, so that zstd level 1 compresses them to
 * about what it gets on real text (0.4-0.5), not to the 0.1 of a repeated
 * template. Every byte is a pure function of (vocabulary seed, object seed,
 * size); bytes are written with plain loops into one buffer (no strings), so
 * the bench client spends little CPU making them.
 *
 * @module
 */
import { fillXorshift, mixSeed, Rng, zipfTable } from "../lib/prng.ts";

/** What a generated object looks like. */
export type ContentKind = "code" | "logs" | "prose" | "binary";

/** Every kind, text kinds first. */
export const CONTENT_KINDS: readonly ContentKind[] = ["code", "logs", "prose", "binary"];

const encoder = new TextEncoder();
const bytesOf = (words: readonly string[]) => words.map((w) => encoder.encode(w));

const ENGLISH = bytesOf(
  ("the of and to a in is it that for on was with as be by this are or at from not " +
    "which an have but can has all one if when more will you their its they we there also " +
    "been each other into only some may than use so these any then such file data value " +
    "time first new used see must should two would most where about after before default")
    .split(" "),
);
const KEYWORDS = ranked(bytesOf(
  ("const let return if else for while function import export from await async new this " +
    "null true false class extends static throw try catch case break continue typeof")
    .split(" "),
));
const LEVELS = bytesOf(["info", "info", "info", "debug", "debug", "warn", "error"]);
const STATUSES = [200, 200, 200, 201, 204, 304, 404, 412, 503];
const SYLLABLES = ("ka re mo ti sa lu ne por ex in ad al de str ver an on ch ing ment " +
  "tion buf blk idx log cp syn ref sum map set get key obj")
  .split(" ");

/** Words, most frequent first, with the table that draws them Zipf-like. */
export interface Ranked {
  items: Uint8Array[];
  table: Uint16Array;
}

function ranked(items: Uint8Array[]): Ranked {
  return { items, table: zipfTable(items.length) };
}

/** Seeded word lists a content generator draws from. */
export interface Vocabulary {
  /** Prose words (real English words head the list). */
  words: Ranked;
  /** camelCase identifiers. */
  identifiers: Ranked;
  /** Dotted log event names. */
  events: Ranked;
}

function pseudoWord(rng: Rng): string {
  let w = "";
  for (let n = 1 + rng.below(4); n > 0; n--) w += SYLLABLES[rng.below(SYLLABLES.length)];
  return w;
}

/**
 * The vocabulary of a seed: the same seed always gives the same words.
 *
 * @example
 * ```ts
 * const v = vocabulary(1);
 * v.words.length > 1000; // true
 * ```
 */
export function vocabulary(seed: number): Vocabulary {
  const rng = new Rng(mixSeed(seed, 0x70c));
  const words = [...ENGLISH];
  for (let i = 0; i < 16_000; i++) words.push(encoder.encode(pseudoWord(rng)));
  const identifiers: Uint8Array[] = [];
  for (let i = 0; i < 20_000; i++) {
    let id = pseudoWord(rng);
    for (let parts = rng.below(3); parts > 0; parts--) {
      const w = pseudoWord(rng);
      id += w[0].toUpperCase() + w.slice(1);
    }
    identifiers.push(encoder.encode(id));
  }
  const events: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    events.push(encoder.encode(`${pseudoWord(rng)}.${pseudoWord(rng)}`));
  }
  return { words: ranked(words), identifiers: ranked(identifiers), events: ranked(events) };
}

const HEX = encoder.encode("0123456789abcdef");

/** Writes bytes into a fixed-size buffer; everything past its end is dropped. */
class Writer {
  readonly out: Uint8Array<ArrayBuffer>;
  pos = 0;

  constructor(size: number) {
    this.out = new Uint8Array(size);
  }

  get full(): boolean {
    return this.pos >= this.out.length;
  }

  byte(c: number): void {
    if (this.pos < this.out.length) this.out[this.pos++] = c;
  }

  /** A short byte string: a loop beats `set` for a few bytes. */
  bytes(b: Uint8Array): void {
    const out = this.out;
    const at = this.pos;
    const n = Math.min(b.length, out.length - at);
    for (let i = 0; i < n; i++) out[at + i] = b[i];
    this.pos = at + n;
  }

  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.byte(s.charCodeAt(i));
  }

  /** A non-negative integer in decimal, `width` digits zero-padded at least. */
  int(n: number, width = 1): void {
    let digits = 1;
    for (let p = 10; p <= n; p *= 10) digits++;
    for (let i = digits; i < width; i++) this.byte(0x30);
    const start = this.pos;
    const end = Math.min(start + digits, this.out.length);
    for (let i = digits - 1; i >= 0; i--, n = Math.floor(n / 10)) {
      if (start + i < end) this.out[start + i] = 0x30 + (n % 10);
    }
    this.pos = end;
  }

  hex(rng: Rng, digits: number): void {
    for (let i = 0; i < digits; i++) this.byte(HEX[rng.u32() & 15]);
  }
}

/** A word of `r`: the head of the list is common, its tail rare. */
function zipf(rng: Rng, r: Ranked): Uint8Array {
  return r.items[rng.zipf(r.table)];
}

function sentence(w: Writer, rng: Rng, v: Vocabulary, words: number): void {
  for (let i = 0; i < words && !w.full; i++) {
    if (i > 0) w.byte(0x20);
    const word = zipf(rng, v.words);
    if (i === 0) {
      // Capitalized first word.
      const at = w.pos;
      w.bytes(word);
      if (at < w.out.length && word[0] >= 0x61 && word[0] <= 0x7a) w.out[at] -= 32;
    } else w.bytes(word);
    if (i < words - 1 && rng.odds(0.06)) w.byte(0x2c);
    if (rng.odds(0.05)) {
      w.ascii(" (");
      w.int(rng.below(100_000));
      w.byte(0x29);
    }
  }
  w.ascii(rng.odds(0.9) ? ". " : "? ");
}

function prose(w: Writer, rng: Rng, v: Vocabulary): void {
  while (!w.full) {
    if (rng.odds(0.15)) {
      w.ascii(rng.odds(0.5) ? "## " : "### ");
      sentence(w, rng, v, 2 + rng.below(5));
      w.ascii("\n\n");
    }
    for (let s = 2 + rng.below(6); s > 0; s--) sentence(w, rng, v, 5 + rng.below(20));
    w.ascii("\n\n");
  }
}

function code(w: Writer, rng: Rng, v: Vocabulary): void {
  let depth = 0;
  while (!w.full) {
    for (let i = 0; i < depth * 2; i++) w.byte(0x20);
    const id = () => w.bytes(zipf(rng, v.identifiers));
    const r = rng.float();
    if (r < 0.12 && depth < 5) {
      w.bytes(zipf(rng, KEYWORDS));
      w.byte(0x20);
      id();
      w.byte(0x28);
      for (let a = rng.below(4); a > 0; a--) {
        id();
        if (a > 1) w.ascii(", ");
      }
      w.ascii(") {\n");
      depth++;
    } else if (r < 0.22 && depth > 0) {
      w.ascii("}\n");
      depth--;
    } else if (r < 0.3) {
      w.ascii("// ");
      sentence(w, rng, v, 3 + rng.below(10));
      w.byte(0x0a);
    } else if (r < 0.36) {
      w.ascii("return ");
      id();
      w.ascii(";\n");
    } else {
      w.bytes(zipf(rng, KEYWORDS));
      w.byte(0x20);
      id();
      w.ascii(" = ");
      id();
      w.byte(0x2e);
      id();
      w.byte(0x28);
      if (rng.odds(0.5)) w.int(rng.logInt(1, 1 << 20));
      else {
        w.byte(0x22);
        w.bytes(zipf(rng, v.words));
        w.byte(0x2f);
        w.hex(rng, rng.below(17));
        w.byte(0x22);
      }
      w.ascii(");\n");
    }
    if (depth === 0 && rng.odds(0.3)) w.byte(0x0a);
  }
}

function logs(w: Writer, rng: Rng, v: Vocabulary): void {
  // Timestamps climb from a per-object start, a few ms per line, as a real log's do.
  let ms = Date.UTC(2026, 0, 1) + rng.below(300 * 86_400) * 1000;
  while (!w.full) {
    ms += rng.logInt(1, 2000);
    const d = new Date(ms);
    w.ascii('{"ts":"');
    w.int(d.getUTCFullYear());
    w.byte(0x2d);
    w.int(d.getUTCMonth() + 1, 2);
    w.byte(0x2d);
    w.int(d.getUTCDate(), 2);
    w.byte(0x54);
    w.int(d.getUTCHours(), 2);
    w.byte(0x3a);
    w.int(d.getUTCMinutes(), 2);
    w.byte(0x3a);
    w.int(d.getUTCSeconds(), 2);
    w.byte(0x2e);
    w.int(d.getUTCMilliseconds(), 3);
    w.ascii('Z","level":"');
    w.bytes(LEVELS[rng.below(LEVELS.length)]);
    w.ascii('","event":"');
    w.bytes(zipf(rng, v.events));
    w.ascii('","trace":"');
    w.hex(rng, 16);
    w.ascii('","span":"');
    w.hex(rng, 8);
    w.ascii('","peer":"10.');
    w.int(rng.below(256));
    w.byte(0x2e);
    w.int(rng.below(256));
    w.byte(0x2e);
    w.int(rng.below(256));
    w.ascii('","key":"');
    w.bytes(zipf(rng, v.words));
    w.byte(0x2f);
    w.bytes(zipf(rng, v.identifiers));
    w.byte(0x2f);
    w.int(rng.logInt(1, 100_000));
    w.ascii('","status":');
    w.int(STATUSES[rng.below(STATUSES.length)]);
    w.ascii(',"ms":');
    w.int(rng.logInt(1, 5000));
    w.ascii(',"bytes":');
    w.int(rng.logInt(1, 1 << 24));
    if (rng.odds(0.6)) {
      w.ascii(',"msg":"');
      sentence(w, rng, v, 3 + rng.below(12));
      w.byte(0x22);
    }
    w.ascii("}\n");
  }
}

/**
 * `size` bytes of `kind`, a pure function of (`vocab`, `seed`, `kind`, `size`).
 *
 * @example
 * ```ts
 * const v = vocabulary(1);
 * const page = generate(v, "prose", 42, 8192);
 * page.length; // 8192
 * ```
 */
export function generate(
  vocab: Vocabulary,
  kind: ContentKind,
  seed: number,
  size: number,
): Uint8Array<ArrayBuffer> {
  const w = new Writer(size);
  const rng = new Rng(mixSeed(seed, 0xc0de));
  if (kind === "binary") fillXorshift(w.out, mixSeed(seed, 0xb1));
  else if (kind === "code") code(w, rng, vocab);
  else if (kind === "logs") logs(w, rng, vocab);
  else prose(w, rng, vocab);
  return w.out;
}

/** Bytes of each text kind's corpus: objects are slices of it. */
export const CORPUS_BYTES = 4 * 2 ** 20;
const MIN_SLICE = 64;
const MAX_SLICE = 4096;

/**
 * Content of every kind for one seed, fast: text objects are line-aligned
 * slices (64 B-4 KiB, log-uniform) taken at seeded offsets from a corpus
 * generated once per kind, so making a body costs a few copies, not a loop
 * per byte. Slices are shorter than a 4 KiB block and than any
 * content-defined chunk, so objects share no block and no chunk by accident;
 * their words repeat as a real text's do, so they compress like one.
 *
 * @example
 * ```ts
 * const content = new ContentSource(1);
 * const a = content.bytes("code", 7, 10_000);
 * const b = content.bytes("code", 7, 10_000); // the same bytes
 * ```
 */
export class ContentSource {
  readonly #vocab: Vocabulary;
  readonly #corpora = new Map<ContentKind, Uint8Array>();

  /**
   * Generates the corpora now (about half a second for the default size),
   * so that a run's measured phase does not pay for them.
   */
  constructor(seed: number, corpusBytes = CORPUS_BYTES) {
    this.#vocab = vocabulary(seed);
    for (const [i, kind] of CONTENT_KINDS.entries()) {
      if (kind === "binary") continue;
      this.#corpora.set(kind, generate(this.#vocab, kind, mixSeed(seed, i), corpusBytes));
    }
  }

  /** `size` bytes of `kind`, a pure function of (the source's seed, `kind`, `seed`, `size`). */
  bytes(kind: ContentKind, seed: number, size: number): Uint8Array<ArrayBuffer> {
    const corpus = this.#corpora.get(kind);
    if (!corpus) return generate(this.#vocab, kind, seed, size);
    const out = new Uint8Array(size);
    const rng = new Rng(mixSeed(seed, 0x511ce));
    for (let at = 0; at < size;) {
      let start = lineAfter(corpus, rng.below(corpus.length));
      if (start >= corpus.length) start = 0;
      const end = lineAfter(
        corpus,
        Math.min(corpus.length, start + rng.logInt(MIN_SLICE, MAX_SLICE)),
      );
      const n = Math.min(end - start, size - at);
      out.set(corpus.subarray(start, start + n), at);
      at += n;
    }
    return out;
  }
}

/** Content of every seed, shared by the runs of one bench process (its corpora cost ~0.5 s). */
const sources = new Map<number, ContentSource>();

/** The content source of a seed (built once per process). */
export function contentOf(seed: number): ContentSource {
  let source = sources.get(seed);
  if (!source) sources.set(seed, source = new ContentSource(mixSeed(seed, 0xc0)));
  return source;
}

/** The offset just after the first newline at or after `from` (the end when there is none). */
function lineAfter(text: Uint8Array, from: number): number {
  const nl = text.indexOf(0x0a, from);
  return nl < 0 ? text.length : nl + 1;
}

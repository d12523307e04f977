/**
 * `mixed`: what a file share or an artifact store receives. New objects of
 * four kinds (source-code-like text, JSON log lines, documentation-like
 * prose, incompressible binary; see content.ts), most of them uploaded again
 * a little later under a new key (a copy, a re-deploy, a backup of the same
 * files: byte for byte what was sent before), and small ranged edits of
 * objects written before. Everything is a pure function of the seed.
 *
 * By client bytes, about half is re-uploads; of the new content about 85% is
 * text (zstd level 1 takes it to about 0.4-0.5) and 15% binary; edits are a
 * few percent of the ops and a fraction of a percent of the bytes.
 *
 * @module
 */
import { mixSeed, Rng } from "../lib/prng.ts";
import { type ContentKind, contentOf } from "./content.ts";
import type { Op, Workload, WorkloadOptions } from "./types.ts";

/** Object sizes of each kind (log-uniform between the two) and its share of the new bytes. */
export const KINDS: Readonly<Record<ContentKind, { min: number; max: number; share: number }>> = {
  code: { min: 1024, max: 128 * 1024, share: 0.35 },
  logs: { min: 64 * 1024, max: 4 * 2 ** 20, share: 0.2 },
  prose: { min: 2048, max: 512 * 1024, share: 0.3 },
  binary: { min: 16 * 1024, max: 4 * 2 ** 20, share: 0.15 },
};
/** Probability that a new object is uploaded again later under a new key. */
export const REUPLOAD = 0.9;
/** A re-upload comes this many ops (uniform) after its original. */
export const REUPLOAD_DELAY = { min: 8, max: 128 } as const;
/** Probability that an op is an edit (when an object exists). */
export const EDIT = 0.08;
/** Longest edit, in bytes (log-uniform from 1). */
export const MAX_EDIT = 512;
/** Edits pick among the last this many objects written... */
const RECENT = 4096;
/** ...but not the latest few, which may still be in flight (concurrent PUTs). */
const SETTLE = 16;

/** One planned op; `body` of the workload's op is built from it. */
export interface MixedPlan {
  key: string;
  kind: ContentKind;
  /** Content seed: a re-upload has its original's. */
  seed: number;
  bytes: number;
  /** Set for edits: the object offset written. */
  offset?: number;
  /** Set for re-uploads: the key of the original. */
  copyOf?: string;
}

/** Mean of a log-uniform integer in [min, max]. */
function logUniformMean(min: number, max: number): number {
  return (max - min) / Math.log(max / min);
}

/**
 * The op sequence of `mixed`, without bodies (tests inspect it).
 *
 * @example
 * ```ts
 * const planner = new MixedPlanner(1);
 * const first = planner.next(); // a new object: { key: "mixed/code/00000000", kind: "code", ... }
 * ```
 */
export class MixedPlanner {
  readonly #rng: Rng;
  /** Kinds and their probability per new object (share of bytes / mean size). */
  readonly #weights: [ContentKind, number][];
  /** Due re-uploads, in op order (the delay is bounded, so a short list). */
  readonly #due: { at: number; plan: MixedPlan }[] = [];
  readonly #recent: { key: string; bytes: number; kind: ContentKind }[] = [];
  #ops = 0;
  #objects = 0;
  #copies = 0;

  constructor(seed: number) {
    this.#rng = new Rng(mixSeed(seed, 0x313ed));
    const raw = (Object.keys(KINDS) as ContentKind[]).map((k) =>
      [k, KINDS[k].share / logUniformMean(KINDS[k].min, KINDS[k].max)] as [ContentKind, number]
    );
    const total = raw.reduce((a, [, w]) => a + w, 0);
    this.#weights = raw.map(([k, w]) => [k, w / total]);
  }

  next(): MixedPlan {
    const rng = this.#rng;
    const at = this.#ops++;
    if (this.#recent.length > SETTLE && rng.chance(EDIT)) {
      const target = this.#recent[rng.int(0, this.#recent.length - 1 - SETTLE)];
      const bytes = Math.min(target.bytes, rng.logInt(1, MAX_EDIT));
      // Edits of a binary object are binary too; of text, text of the same kind.
      return {
        key: target.key,
        kind: target.kind,
        seed: mixSeed(rng.u32(), at),
        bytes,
        offset: rng.int(0, target.bytes - bytes),
      };
    }
    if (this.#due.length > 0 && this.#due[0].at <= at) {
      const original = this.#due.shift()!.plan;
      const plan: MixedPlan = {
        key: `mixed/copy/${String(this.#copies++).padStart(8, "0")}`,
        kind: original.kind,
        seed: original.seed,
        bytes: original.bytes,
        copyOf: original.key,
      };
      this.#remember(plan);
      return plan;
    }
    let u = rng.float();
    let kind: ContentKind = this.#weights[this.#weights.length - 1][0];
    for (const [k, w] of this.#weights) {
      if ((u -= w) < 0) {
        kind = k;
        break;
      }
    }
    const n = this.#objects++;
    const plan: MixedPlan = {
      key: `mixed/${kind}/${String(n).padStart(8, "0")}`,
      kind,
      seed: mixSeed(rng.u32(), n),
      bytes: rng.logInt(KINDS[kind].min, KINDS[kind].max),
    };
    if (rng.chance(REUPLOAD)) {
      const due = at + rng.int(REUPLOAD_DELAY.min, REUPLOAD_DELAY.max);
      const i = this.#due.findIndex((d) => d.at > due);
      this.#due.splice(i < 0 ? this.#due.length : i, 0, { at: due, plan });
    }
    this.#remember(plan);
    return plan;
  }

  #remember(plan: MixedPlan): void {
    if (plan.bytes === 0) return;
    this.#recent.push({ key: plan.key, bytes: plan.bytes, kind: plan.kind });
    if (this.#recent.length > RECENT) this.#recent.shift();
  }
}

/** What `mixed` sends, for the report. */
const SUMMARY = "new objects of code-like text, JSON logs, prose and random binary (35/20/30/15% " +
  `of new bytes), ${REUPLOAD * 100}% of them uploaded again ${REUPLOAD_DELAY.min}-` +
  `${REUPLOAD_DELAY.max} ops later under new keys, ${EDIT * 100}% of ops small ranged edits ` +
  `(1-${MAX_EDIT} B)`;

/** `mixed`. */
export function mixed({ seed }: WorkloadOptions): Workload {
  const planner = new MixedPlanner(seed);
  const content = contentOf(seed); // its corpora are made here, before any run measures
  const op = (plan: MixedPlan): Op => ({
    key: plan.key,
    bytes: plan.bytes,
    offset: plan.offset,
    body: () => content.bytes(plan.kind, plan.seed, plan.bytes),
  });
  return {
    name: "mixed",
    summary: SUMMARY,
    concurrency: 8,
    setup: () => [],
    next: () => op(planner.next()),
  };
}

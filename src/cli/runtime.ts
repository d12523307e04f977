/**
 * How an appliance process is started. Its memory must be bounded by
 * configuration (invariant 7): V8's young generation otherwise grows to tens
 * of MiB of short-lived garbage during a big CP (per-block bookkeeping of a
 * 1 GiB object), which showed as ~100 MiB more peak RSS. A 2 MiB semi-space
 * keeps it small at no measurable cost in throughput. The deno.json tasks pass
 * the same flags; the tests and the benchmark spawn appliances with these.
 *
 * @module
 */

/** V8 flags of every appliance process. */
export const APPLIANCE_V8_FLAGS = "--max-semi-space-size=2";

/**
 * `deno` arguments that run the appliance CLI at `mainTs`.
 *
 * @example
 * ```ts
 * new Deno.Command(Deno.execPath(), { args: [...applianceArgs("src/main.ts"), "source", "--port", "0"] });
 * ```
 */
export function applianceArgs(mainTs: string): string[] {
  return ["run", "-A", `--v8-flags=${APPLIANCE_V8_FLAGS}`, mainTs];
}

/**
 * The Prometheus text exposition format, version 0.0.4: `# HELP` and
 * `# TYPE` lines, then one sample per line; histograms as cumulative
 * `_bucket{le="..."}` samples ending with `le="+Inf"`, then `_sum` and
 * `_count`.
 *
 * @module
 */
import type { AnyFamily, Registry } from "./registry.ts";

/** The Content-Type of {@link renderText}'s output. */
export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * A label value as the format writes it: `\`, `"` and line feeds escaped.
 *
 * @example
 * ```ts
 * escapeLabelValue('a"b\\c\nd'); // 'a\\"b\\\\c\\nd'
 * ```
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

/**
 * A HELP text as the format writes it: `\` and line feeds escaped.
 *
 * @example
 * ```ts
 * escapeHelp("one\ntwo \\"); // "one\\ntwo \\\\"
 * ```
 */
export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/**
 * A sample value or bucket bound: `+Inf`, `-Inf`, `NaN`, else the shortest
 * decimal that reads back as the same number.
 *
 * @example
 * ```ts
 * formatValue(Infinity); // "+Inf"
 * formatValue(0.25); // "0.25"
 * ```
 */
export function formatValue(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n); // NaN is "NaN"; exponents ("1e-7") are valid floats for the format
}

function labelSet(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts: string[] = [];
  for (let i = 0; i < names.length; i++) {
    parts.push(`${names[i]}="${escapeLabelValue(values[i])}"`);
  }
  if (extra !== "") parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function writeFamily(f: AnyFamily, out: string[]): void {
  out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
  if (f.type !== "histogram") {
    for (const s of f.series) {
      out.push(`${f.name}${labelSet(f.labelNames, s.values)} ${formatValue(s.child.value)}`);
    }
    return;
  }
  for (const s of f.series) {
    const h = s.child;
    let cumulative = 0;
    for (let i = 0; i < h.bounds.length; i++) {
      cumulative += h.counts[i];
      const le = `le="${formatValue(h.bounds[i])}"`;
      out.push(`${f.name}_bucket${labelSet(f.labelNames, s.values, le)} ${cumulative}`);
    }
    out.push(`${f.name}_bucket${labelSet(f.labelNames, s.values, 'le="+Inf"')} ${h.count}`);
    out.push(`${f.name}_sum${labelSet(f.labelNames, s.values)} ${formatValue(h.sum)}`);
    out.push(`${f.name}_count${labelSet(f.labelNames, s.values)} ${h.count}`);
  }
}

/**
 * Every family of `registry` in the text format (after running its
 * collectors), ending with a line feed.
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 * const r = new Registry();
 * r.counter("jobs_total", "Jobs done.").labels().inc();
 * renderText(r); // "# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 1\n"
 * ```
 */
export function renderText(registry: Registry): string {
  const out: string[] = [];
  for (const f of registry.collect()) writeFamily(f, out);
  return out.length === 0 ? "" : out.join("\n") + "\n";
}

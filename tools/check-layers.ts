/**
 * The layering rules of `src/`, checked on every import (`deno task check`
 * runs this): the two appliances never import each other, the wire protocol
 * knows no storage and no HTTP, storage knows no HTTP, and the shared HTTP
 * layer knows neither appliance. A violation is printed as
 * `file: imports target (rule)` and the exit code is 1.
 *
 * @example
 * ```ts
 * import { layerViolations } from "./check-layers.ts";
 *
 * const found = layerViolations(
 *   new Map([["src/storage/x.ts", 'import { Hono } from "hono";']]),
 * );
 * console.log(found[0].rule); // "src/storage imports no HTTP"
 * ```
 *
 * @module
 */
import { dirname, join, normalize, relative } from "node:path";

/** One import that breaks a rule. */
export interface Violation {
  /** The importing file, relative to the repository root. */
  file: string;
  /** What it imports: a repository path, or the bare specifier (`hono`). */
  target: string;
  rule: string;
}

interface Rule {
  /** Files the rule applies to (a path prefix). */
  from: string;
  /** Imports it forbids: path prefixes, or bare specifiers (`hono` matches `hono/...` too). */
  forbid: string[];
  name: string;
}

const HTTP = ["hono", "src/http/"];
const APPLIANCES = ["src/edge-source/", "src/edge-dest/"];

/** The rules, in the words of docs/internals.md. */
export const RULES: readonly Rule[] = [
  {
    from: "src/edge-source/",
    forbid: ["src/edge-dest/"],
    name: "the appliances never import each other",
  },
  {
    from: "src/edge-dest/",
    forbid: ["src/edge-source/"],
    name: "the appliances never import each other",
  },
  {
    from: "src/protocol/",
    forbid: ["src/storage/", ...HTTP, ...APPLIANCES, "src/cli/"],
    name: "src/protocol imports no storage, HTTP or appliance",
  },
  {
    from: "src/storage/",
    forbid: [...HTTP, ...APPLIANCES, "src/cli/"],
    name: "src/storage imports no HTTP",
  },
  {
    from: "src/http/",
    forbid: [...APPLIANCES, "src/cli/"],
    name: "src/http imports neither appliance",
  },
  { from: "src/", forbid: ["tests/", "bench/", "tools/"], name: "src imports only src" },
];

/** Every module specifier of `text`: static imports and re-exports, `import("x")`. */
export function importsOf(text: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\b[^"';]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const m of text.matchAll(pattern)) found.push(m[1]);
  }
  return found;
}

/** What `specifier` in `file` (repository-relative) names: a repository path or a bare name. */
function resolve(file: string, specifier: string): string {
  if (specifier.startsWith(".")) return normalize(join(dirname(file), specifier));
  return specifier.replace(/^npm:\/?/, "").replace(/@[^/]*$/, "");
}

function matches(target: string, prefix: string): boolean {
  if (prefix.endsWith("/")) return target.startsWith(prefix);
  return target === prefix || target.startsWith(`${prefix}/`);
}

/** The violations among `files` (repository-relative path → source text). */
export function layerViolations(files: Map<string, string>): Violation[] {
  const out: Violation[] = [];
  for (const [file, text] of files) {
    for (const specifier of importsOf(text)) {
      const target = resolve(file, specifier);
      for (const rule of RULES) {
        if (!file.startsWith(rule.from)) continue;
        if (rule.forbid.some((p) => matches(target, p))) {
          out.push({ file, target, rule: rule.name });
        }
      }
    }
  }
  return out;
}

async function sources(root: string, dir: string, into: Map<string, string>): Promise<void> {
  for await (const e of Deno.readDir(join(root, dir))) {
    const path = join(dir, e.name);
    if (e.isDirectory) await sources(root, path, into);
    else if (e.isFile && e.name.endsWith(".ts")) {
      into.set(path, await Deno.readTextFile(join(root, path)));
    }
  }
}

if (import.meta.main) {
  const root = relative(Deno.cwd(), new URL("../", import.meta.url).pathname) || ".";
  const files = new Map<string, string>();
  await sources(root, "src", files);
  const found = layerViolations(files);
  for (const v of found) console.error(`${v.file}: imports ${v.target} (${v.rule})`);
  if (found.length > 0) Deno.exit(1);
  console.log(`layers: ${files.size} files, no violation`);
}

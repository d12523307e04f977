/**
 * Compiles wasm/block-diff (AssemblyScript) to wasm/block-diff/build/block-diff.wasm through
 * the AssemblyScript compiler API. Runs before every `start`/`test`, so it skips the compile
 * when the output is newer than every source file.
 *
 * Usage: deno run --allow-read --allow-write --allow-env wasm/build.ts [--force] [--wat]
 *
 * @module
 */
import asc from "assemblyscript/asc";

const root = new URL("./block-diff/", import.meta.url);
const entry = new URL("assembly/index.ts", root);
const outDir = new URL("build/", root);
const out = new URL("block-diff.wasm", outDir);

/**
 * Newest modification time (ms) of the module's sources and of their folders (a deleted or
 * renamed file changes its folder's time).
 */
async function newestSource(dir: URL): Promise<number> {
  let newest = await mtime(dir);
  for await (const e of Deno.readDir(dir)) {
    if (e.name === "build") continue; // our own output
    const url = new URL(e.isDirectory ? `${e.name}/` : e.name, dir);
    const t = e.isDirectory ? await newestSource(url) : (await Deno.stat(url)).mtime?.getTime();
    newest = Math.max(newest, t ?? Infinity); // unknown mtime: assume changed
  }
  return newest;
}

async function mtime(url: URL): Promise<number> {
  try {
    return (await Deno.stat(url)).mtime?.getTime() ?? -1;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return -1;
    throw e;
  }
}

const force = Deno.args.includes("--force");
const sources = Math.max(await newestSource(root), await mtime(new URL(import.meta.url)));
const built = await mtime(out);
if (!force && built > sources) {
  console.log("wasm/block-diff: up to date");
  Deno.exit(0);
}

await Deno.mkdir(outDir, { recursive: true });
const args = [
  entry.pathname,
  "-o",
  out.pathname,
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--enable",
  "simd",
  "--use",
  "abort=",
];
if (Deno.args.includes("--wat")) args.push("-t", new URL("block-diff.wat", outDir).pathname);

/**
 * Writes each output through a temporary file and a rename: `start`/`test` of other
 * processes may load the module while this one rebuilds it, and must never see half a file.
 */
async function writeAtomically(
  filename: string,
  contents: Uint8Array | string,
  baseDir: string,
): Promise<void> {
  const path = filename.startsWith("/") ? filename : `${baseDir}/${filename}`;
  const tmp = `${path}.${Deno.pid}.tmp`;
  if (typeof contents === "string") await Deno.writeTextFile(tmp, contents);
  else await Deno.writeFile(tmp, contents);
  await Deno.rename(tmp, path);
}

const started = performance.now();
const result = await asc.main(args, { writeFile: writeAtomically });
const stderr = result.stderr.toString().trim();
if (result.error) {
  console.error(`wasm/block-diff: compile failed: ${result.error.message}`);
  if (stderr) console.error(stderr);
  Deno.exit(1);
}
if (stderr) console.error(stderr); // warnings
const size = (await Deno.stat(out)).size;
const ms = Math.round(performance.now() - started);
console.log(`wasm/block-diff: built ${size} bytes in ${ms} ms`);

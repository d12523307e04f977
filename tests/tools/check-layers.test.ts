/**
 * The layering check of `deno task check` (tools/check-layers.ts): it sees
 * every form of import, each rule catches its violation, the tree keeps them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { importsOf, layerViolations } from "../../tools/check-layers.ts";

Deno.test("check-layers: finds every form of import", () => {
  const text = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    'export { c } from "./c.ts";',
    'export * from "./d.ts";',
    'import "./side-effect.ts";',
    'import {\n  e,\n  f,\n} from "./ef.ts";',
    'const g = await import("./g.ts");',
  ].join("\n");
  assert.deepEqual(importsOf(text), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./d.ts",
    "./ef.ts",
    "./side-effect.ts",
    "./g.ts",
  ]);
});

Deno.test("check-layers: each rule catches its violation", () => {
  const files = new Map([
    ["src/edge-dest/server.ts", 'import { createSourceApp } from "../edge-source/app.ts";'],
    [
      "src/edge-source/mirror/mirror.ts",
      'import type { DestState } from "../../edge-dest/app.ts";',
    ],
    [
      "src/protocol/http/objects.ts",
      'import type { ObjectStore } from "../../storage/objects/store.ts";',
    ],
    ["src/storage/objects/store.ts", 'import type { Context } from "hono";'],
    ["src/storage/log/nvlog.ts", 'import { STATUS_OF } from "../../http/errors.ts";'],
    ["src/http/objects.ts", 'import { x } from "../edge-dest/app.ts";'],
    ["src/main.ts", 'import { y } from "../tests/support/prng.ts";'],
    // Allowed: storage uses the protocol, the appliances use http and storage.
    ["src/storage/log/types.ts", 'import type { Op } from "../../protocol/log-frame/mod.ts";'],
    ["src/edge-dest/app.ts", 'import { Hono } from "hono";\nimport "../http/auth.ts";'],
  ]);
  assert.deepEqual(
    layerViolations(files).map((v) => `${v.file} -> ${v.target}`),
    [
      "src/edge-dest/server.ts -> src/edge-source/app.ts",
      "src/edge-source/mirror/mirror.ts -> src/edge-dest/app.ts",
      "src/protocol/http/objects.ts -> src/storage/objects/store.ts",
      "src/storage/objects/store.ts -> hono",
      "src/storage/log/nvlog.ts -> src/http/errors.ts",
      "src/http/objects.ts -> src/edge-dest/app.ts",
      "src/main.ts -> tests/support/prng.ts",
    ],
  );
});

Deno.test("check-layers: the tree keeps the rules", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", new URL("../../tools/check-layers.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.deepEqual(new TextDecoder().decode(out.stderr), "");
  assert.deepEqual(out.code, 0);
});

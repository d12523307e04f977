/**
 * The destination's side of the online verify, for its source (pair token):
 * `GET /v1/repl/verify?cp=N` streams the digests of every live block of its
 * committed CP N in block order (pinned while it streams), and
 * `POST /v1/repl/repair?cp=N` writes the blocks the source sends only where
 * they match the block's own map entry here (which came from the source).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { ObjectStore } from "../storage/objects/store.ts";
 * declare const store: ObjectStore;
 * const app = new Hono();
 * registerVerifyRoutes(app, store, (c) => c.req.raw.body);
 * ```
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import { type Logger, rootLogger } from "../logging/mod.ts";
import {
  decodeRepair,
  digestStream,
  REPAIR_BATCH_BLOCKS,
  REPAIR_RECORD_BYTES,
} from "../protocol/verify/mod.ts";
import type { ObjectStore } from "../storage/objects/store.ts";

/** Registers the verify and repair routes (before the catch-all of `/v1/repl/*`). */
export function registerVerifyRoutes(
  app: Hono,
  store: ObjectStore,
  body: (c: Context) => ReadableStream<Uint8Array> | null,
  logger: Logger = rootLogger(),
): void {
  app.get("/v1/repl/verify", (c) => {
    const cp = committedCp(store, c.req.query("cp"), "verify");
    const list = store.openBlockDigests(cp);
    const stream = digestStream({ cp, volumeDigest: list.volumeDigest }, list.blocks, list.close);
    return c.body(stream, 200, { "Content-Type": "application/octet-stream" });
  });
  app.post("/v1/repl/repair", async (c) => {
    const cp = committedCp(store, c.req.query("cp"), "repair");
    const max = REPAIR_BATCH_BLOCKS * REPAIR_RECORD_BYTES;
    const header = c.req.header("Content-Length");
    if (header === undefined) {
      throw new RefsyncError("length_required", "a repair needs a Content-Length");
    }
    const length = Number(header);
    if (!(Number.isSafeInteger(length) && length >= 0 && length <= max)) {
      throw new RefsyncError(
        "too_large",
        `a repair needs a Content-Length of at most ${max} (${REPAIR_BATCH_BLOCKS} blocks)`,
      );
    }
    const bytes = new Uint8Array(await new Response(body(c)).arrayBuffer());
    const result = await store.repairBlocks(cp, decodeRepair(bytes));
    if (result.repaired.length > 0 || result.refused.length > 0) {
      logger.warn("verify.repaired", {
        cp,
        blocks: result.repaired,
        refused: result.refused.map((r) => r.message),
      });
    }
    return c.json(result);
  });
}

/** The `cp` of a verify or repair request, which must be this destination's committed CP. */
function committedCp(store: ObjectStore, text: string | undefined, what: string): number {
  const cp = Number(text);
  if (text === undefined || !Number.isSafeInteger(cp) || cp < 0) {
    throw new RefsyncError("bad_request", `a ${what} names the CP it is about: ?cp=N`);
  }
  const committed = store.superblock.cp;
  if (cp !== committed) {
    throw new RefsyncError(
      "conflict",
      `this destination is at CP ${committed}, not CP ${cp}: a ${what} compares the CP both sides hold; try again`,
      { cp: committed },
    );
  }
  return cp;
}

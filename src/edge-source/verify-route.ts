/**
 * `POST /v1/admin/verify[?repair=true]` of a source (pair token, like every
 * admin POST): the online verify of the pair (`./mirror/verify.ts`).
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import type { Verifier } from "./mirror/verify.ts";
 * declare const verifier: Verifier;
 * const app = new Hono();
 * registerVerifyRoute(app, verifier);
 * ```
 *
 * @module
 */
import type { Hono } from "hono";
import { RefsyncError } from "../errors/mod.ts";
import { methodNotAllowed } from "../http/errors.ts";
import type { Verifier } from "./mirror/verify.ts";

/** Registers the route; `verifier` is null on a source without a destination. */
export function registerVerifyRoute(app: Hono, verifier: Verifier | null): void {
  app.post("/v1/admin/verify", async (c) => {
    const flag = c.req.query("repair");
    if (flag !== undefined && !["true", "false", "1", "0"].includes(flag)) {
      throw new RefsyncError("bad_request", `repair=${flag}: give repair=true or repair=false`);
    }
    if (verifier === null) {
      throw new RefsyncError(
        "conflict",
        "this source has no destination (--dest): there is nothing to verify against",
      );
    }
    return c.json(await verifier.run(flag === "true" || flag === "1"));
  });
  app.all("/v1/admin/verify", (c) => methodNotAllowed(c, ["POST"]));
}

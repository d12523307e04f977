/**
 * A destination appliance in this process (`startDest`), on a memory disk and
 * served into a captured handler instead of a port: what the replica client's
 * contract and the destination's route tests call directly.
 *
 * @example
 * ```ts
 * import { memoryDest } from "./memory-dest.ts";
 * const { dest, handler } = await memoryDest("token");
 * const res = await handler()(new Request("http://dest.sim/v1/repl/state"), {} as Deno.ServeHandlerInfo);
 * await dest.close();
 * ```
 *
 * @module
 */
import { type DestHandle, startDest } from "../../src/edge-dest/server.ts";
import type { DestConfig } from "../../src/cli/args.ts";
import type { Serve } from "../../src/http/serve.ts";
import { silentLogger } from "../../src/logging/mod.ts";
import { MemoryFileSystem } from "../../src/storage/fs/memory.ts";

/** The peer a request handed to a captured handler comes from (a client on this host). */
export const PEER: Deno.ServeHandlerInfo = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
};

/** A destination's configuration: data in `data`, pair token `token`, CPs only from its source. */
export function destConfig(data: string, token: string): DestConfig {
  return {
    host: "127.0.0.1",
    port: 0,
    data,
    token,
    clientToken: null,
    cpIntervalMs: 0,
    cpDirtyBytes: 1 << 30,
    maxObjectBytes: 1 << 30,
    bodyIdleTimeoutMs: 30_000,
    spaceReserve: 0,
    logLevel: "error",
    s3: { port: null, accessKey: null, secretKey: null, uploadExpiryMs: 86_400_000 },
  };
}

/** A destination on a memory disk (`fileOps`), served into `handler()` instead of a port. */
export async function memoryDest(
  token: string,
  fileOps: MemoryFileSystem = new MemoryFileSystem(),
): Promise<{ dest: DestHandle; handler: () => Deno.ServeHandler }> {
  let handler: Deno.ServeHandler | null = null;
  const serve: Serve = (_host, _port, h) => {
    handler = h as Deno.ServeHandler;
    return { addr: { port: 1 }, shutdown: () => Promise.resolve() };
  };
  const dest = await startDest(destConfig("dest", token), {
    logger: silentLogger,
    fileOps,
    serve,
  });
  return { dest, handler: () => handler! };
}

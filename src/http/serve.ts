/**
 * Listening: both appliances serve their app through {@link listen}, so a
 * port that is taken is reported with the address, not as a bare
 * `Address already in use (os error 98)`.
 *
 * @module
 */

/** A running server: its port, and how to stop it. */
export interface Server {
  readonly addr: { readonly port: number };
  shutdown(): Promise<void>;
}

/** How an appliance serves its app: {@link listen}, or the simulator's in-memory network. */
export type Serve = (
  host: string,
  port: number,
  handler: Deno.ServeHandler<Deno.NetAddr>,
) => Server;

/**
 * Serves `handler` on `host:port` (port 0: any free port).
 *
 * @example
 * ```ts
 * import { listen } from "./serve.ts";
 * const server = listen("127.0.0.1", 0, () => new Response("ok"));
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export function listen(
  host: string,
  port: number,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({ hostname: host, port, onListen: () => {} }, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `cannot listen on ${host}:${port}: address already in use (another process has it; ` +
          `choose another port)`,
      );
    }
    throw e;
  }
}

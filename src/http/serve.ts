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
    throw listenError(e, host, port);
  }
}

/**
 * What to throw when listening on `host:port` failed with `e`: a port in use
 * becomes a message with the address, what it was for and what to choose
 * instead; anything else stays as it is.
 *
 * @example
 * ```ts
 * import { listenError } from "./serve.ts";
 * try {
 *   Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * } catch (e) {
 *   throw listenError(e, "127.0.0.1", 0, { purpose: "the log stream" });
 * }
 * ```
 */
export function listenError(
  e: unknown,
  host: string,
  port: number,
  { purpose, instead = "another port" }: { purpose?: string; instead?: string } = {},
): unknown {
  if (!(e instanceof Deno.errors.AddrInUse)) return e;
  return new Error(
    `cannot listen on ${host}:${port}${purpose ? ` for ${purpose}` : ""}: address already in ` +
      `use (another process has it; choose ${instead})`,
  );
}

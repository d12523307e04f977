/**
 * A TCP proxy between a source and its destination that puts the faults of a
 * real link on it: delay, a cut (every connection closed at once), a silent
 * partition (connections accepted, nothing forwarded, nothing closed: what a
 * dead router does), refusal, and a flipped byte. It listens on 127.0.0.1,
 * port 0, and forwards to one 127.0.0.1 port; a test points the source's
 * `--dest` at {@link FaultProxy.url} and changes the fault while the pair runs.
 * {@link FaultProxy.forward} adds a port to another target under the same
 * faults (the destination's log stream).
 *
 * @example
 * ```ts
 * import { FaultProxy } from "./fault-proxy.ts";
 * const proxy = await FaultProxy.start(8081);
 * proxy.delayMs = 50; // every chunk, both ways
 * proxy.upBytesPerSecond = 4 << 20; // a 4 MiB/s link towards the target
 * proxy.mode = "blackhole"; // new and open connections stall silently
 * proxy.cut(); // and every open connection is closed
 * proxy.mode = "pass";
 * await proxy.close();
 * ```
 *
 * @module
 */

/** What the proxy does with the bytes it carries. */
export type ProxyMode =
  /** Forward (after {@link FaultProxy.delayMs}). */
  | "pass"
  /** Read and drop: the peers see an open connection that never answers. */
  | "blackhole"
  /** Close every new connection at once (a refused port looks the same to a client). */
  | "refuse";

/** Which way bytes flow: `up` from the client (the source) to the target. */
export type Direction = "up" | "down";

interface Link {
  client: Deno.Conn;
  server: Deno.Conn | null;
  pumps: Promise<void>[];
  closed: boolean;
}

/** The proxy; see the module doc. */
export class FaultProxy {
  readonly #listener: Deno.Listener;
  readonly #links = new Set<Link>();
  readonly #accepting: Promise<void>[] = [];
  readonly #listeners: Deno.Listener[] = [];
  /** Added before each chunk is forwarded, both ways (ms). */
  delayMs = 0;
  /** Bandwidth of the way `up` (bytes a second, all connections together); 0: unbounded. */
  upBytesPerSecond = 0;
  /** When the bandwidth bound lets the next chunk go up (performance.now() ms). */
  #upFreeAt = 0;
  mode: ProxyMode = "pass";
  /** Bytes forwarded each way, and connections accepted. */
  readonly stats = { connections: 0, up: 0, down: 0, corrupted: 0 };
  #corrupt: { direction: Direction; afterBytes: number } | null = null;

  private constructor(listener: Deno.Listener, targetPort: number) {
    this.#listener = listener;
    this.#listen(listener, targetPort);
  }

  /** Listens on another port (returned) that forwards to 127.0.0.1:`targetPort`, same faults. */
  forward(targetPort: number): number {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listen(listener, targetPort);
    return listener.addr.port;
  }

  #listen(listener: Deno.Listener, targetPort: number): void {
    this.#listeners.push(listener);
    this.#accepting.push(this.#accept(listener, targetPort));
  }

  /** Listens on 127.0.0.1 (port 0) and forwards to 127.0.0.1:`targetPort`. */
  static start(targetPort: number): Promise<FaultProxy> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return Promise.resolve(new FaultProxy(listener, targetPort));
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** `http://127.0.0.1:<port>`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Flips one byte of the stream going `direction`, `afterBytes` bytes from now. */
  corruptNext(direction: Direction, afterBytes = 0): void {
    const sent = direction === "up" ? this.stats.up : this.stats.down;
    this.#corrupt = { direction, afterBytes: sent + afterBytes };
  }

  /** Closes every open connection now (the peers see a reset or an early EOF). */
  cut(): void {
    for (const link of this.#links) this.#closeLink(link);
  }

  /** Stops listening, closes every connection, and waits for every pump. */
  async close(): Promise<void> {
    for (const l of this.#listeners) l.close();
    await Promise.all(this.#accepting);
    const links = [...this.#links];
    this.cut();
    await Promise.all(links.flatMap((l) => l.pumps));
  }

  async #accept(listener: Deno.Listener, targetPort: number): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // closed
      }
      this.stats.connections++;
      if (this.mode === "refuse") {
        client.close();
        continue;
      }
      const link: Link = { client, server: null, pumps: [], closed: false };
      this.#links.add(link);
      link.pumps.push(this.#open(link, targetPort));
    }
  }

  async #open(link: Link, targetPort: number): Promise<void> {
    try {
      if (this.mode !== "blackhole") {
        link.server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
        if (link.closed) {
          link.server.close();
          return;
        }
      }
      const down = link.server ? this.#pump(link, link.server, link.client, "down") : null;
      const up = this.#pump(link, link.client, link.server, "up");
      await Promise.all([up, down]);
    } catch {
      // The target refused or a peer reset: the link ends.
    } finally {
      this.#closeLink(link);
    }
  }

  /** Copies `from` to `to` (or drops it while blackholed, or when there is no `to`). */
  async #pump(link: Link, from: Deno.Conn, to: Deno.Conn | null, dir: Direction): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await from.read(buf);
      } catch {
        n = null;
      }
      if (n === null || link.closed) break;
      if (this.mode === "blackhole" || to === null) continue;
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (dir === "up" && this.upBytesPerSecond > 0) {
        // The chunk leaves once the link has carried the ones before it.
        const now = performance.now();
        const start = Math.max(now, this.#upFreeAt);
        this.#upFreeAt = start + (n * 1000) / this.upBytesPerSecond;
        if (this.#upFreeAt > now) await new Promise((r) => setTimeout(r, this.#upFreeAt - now));
      }
      if (link.closed) break;
      const chunk = buf.subarray(0, n);
      this.#maybeCorrupt(chunk, dir);
      try {
        for (let at = 0; at < n;) at += await to.write(chunk.subarray(at));
      } catch {
        break;
      }
      if (dir === "up") this.stats.up += n;
      else this.stats.down += n;
    }
    this.#closeLink(link);
  }

  #maybeCorrupt(chunk: Uint8Array, dir: Direction): void {
    const c = this.#corrupt;
    if (c === null || c.direction !== dir) return;
    const sent = dir === "up" ? this.stats.up : this.stats.down;
    const at = c.afterBytes - sent;
    if (at >= chunk.length) return;
    chunk[Math.max(0, at)] ^= 0x01;
    this.#corrupt = null;
    this.stats.corrupted++;
  }

  #closeLink(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    this.#links.delete(link);
    for (const c of [link.client, link.server]) {
      try {
        c?.close();
      } catch {
        // already closed
      }
    }
  }
}

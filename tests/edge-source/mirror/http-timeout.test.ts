/**
 * The replication client's deadline: a destination that accepts the
 * connection and never answers (a silent partition, a stopped process) makes
 * every request fail as `unavailable` after the deadline, so the forwarder
 * marks the link down and retries instead of hanging for ever.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../../src/errors/mod.ts";
import { HttpReplicaClient } from "../../../src/edge-source/mirror/http-client.ts";
import { replicaTimeoutMs } from "../../../src/edge-source/mirror/mirror.ts";

/** A TCP server on 127.0.0.1 that accepts and reads, and never writes a byte back. */
async function withSilentServer(fn: (url: string) => Promise<void>): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      // Read what comes (so the request is sent whole), answer nothing.
      conn.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })();
  try {
    await fn(`http://127.0.0.1:${listener.addr.port}`);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the client's abort already
      }
    }
  }
}

/** `p`, or a rejection naming the hang after `ms` (without a deadline the request never ends). */
async function bounded(p: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("http client: a destination that never answers is unavailable after the deadline", async () => {
  await withSilentServer(async (url) => {
    const client = new HttpReplicaClient({ url, token: "t", timeoutMs: () => 300 });
    const calls = [
      () => client.state(),
      () => client.sendFrames(new Uint8Array(1000)),
      () => client.sendCpPart(1, 0, true, new Uint8Array(4096)),
    ];
    for (const call of calls) {
      const t0 = performance.now();
      await assert.rejects(() => bounded(call(), 5000), (e) => {
        assert.ok(isError(e, "unavailable"), String(e));
        assert.match(String(e), /unreachable: no answer within 300 ms/);
        return true;
      });
      const ms = performance.now() - t0;
      assert.ok(ms >= 250 && ms < 5000, `failed after ${Math.round(ms)} ms`);
    }
  });
});

Deno.test("http client: the deadline is twice --sync-timeout, longer for a large body (1 MiB/s)", () => {
  const deadline = replicaTimeoutMs(2000);
  assert.equal(deadline(0), 4000);
  assert.equal(deadline(1 << 20), 4000);
  assert.equal(deadline(8 << 20), 8000);
  assert.equal(deadline(32 << 20), 32000);
});

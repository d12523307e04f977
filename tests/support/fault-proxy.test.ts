import assert from "node:assert/strict";
import { FaultProxy } from "./fault-proxy.ts";

/** An echo server on 127.0.0.1:0; `close` ends it and its connections. */
function echoServer(): { port: number; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      conns.add(conn);
      served.push((async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
            await conn.write(buf.subarray(0, n));
          }
        } catch {
          // closed
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      })());
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      listener.close();
      await accepting;
      for (const c of conns) c.close();
      await Promise.all(served);
    },
  };
}

/** Writes `bytes` and reads back as many, or null when the connection ends or `ms` pass first. */
async function roundTrip(
  conn: Deno.Conn,
  bytes: Uint8Array,
  ms: number,
): Promise<Uint8Array | null> {
  await conn.write(bytes);
  const got = new Uint8Array(bytes.length);
  let at = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    while (at < got.length) {
      const n = await Promise.race([conn.read(got.subarray(at)), expired]);
      if (n === null) return null;
      at += n;
    }
    return got;
  } finally {
    clearTimeout(timer);
  }
}

async function withProxy(fn: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  const echo = echoServer();
  const proxy = await FaultProxy.start(echo.port);
  try {
    await fn(proxy);
  } finally {
    await proxy.close();
    await echo.close();
  }
}

const hello = new TextEncoder().encode("hello, destination");

Deno.test("fault proxy: passes bytes both ways and counts them", () =>
  withProxy(async (proxy) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      assert.deepEqual(await roundTrip(conn, hello, 5000), hello);
      assert.equal(proxy.stats.up, hello.length);
      assert.equal(proxy.stats.down, hello.length);
    } finally {
      conn.close();
    }
  }));

Deno.test("fault proxy: flips exactly one byte where asked", () =>
  withProxy(async (proxy) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      proxy.corruptNext("up", 4);
      const got = await roundTrip(conn, hello, 5000);
      assert.ok(got);
      const diffs = [...got].flatMap((b, i) => (b === hello[i] ? [] : [i]));
      assert.deepEqual(diffs, [4]);
      assert.equal(got[4], hello[4] ^ 1);
      assert.deepEqual(await roundTrip(conn, hello, 5000), hello); // once only
    } finally {
      conn.close();
    }
  }));

Deno.test("fault proxy: a blackhole stalls silently, and pass resumes new connections", () =>
  withProxy(async (proxy) => {
    proxy.mode = "blackhole";
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      assert.equal(await roundTrip(stalled, hello, 300), null);
    } finally {
      stalled.close();
    }
    proxy.mode = "pass";
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      assert.deepEqual(await roundTrip(conn, hello, 5000), hello);
    } finally {
      conn.close();
    }
  }));

Deno.test("fault proxy: cut ends open connections; refuse closes new ones", () =>
  withProxy(async (proxy) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      assert.deepEqual(await roundTrip(conn, hello, 5000), hello);
      proxy.cut();
      const after = await roundTrip(conn, hello, 5000).catch(() => null);
      assert.equal(after, null);
    } finally {
      conn.close();
    }
    proxy.mode = "refuse";
    const refused = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      assert.equal(await roundTrip(refused, hello, 5000).catch(() => null), null);
    } finally {
      refused.close();
    }
  }));

Deno.test("fault proxy: a delay holds every chunk back", () =>
  withProxy(async (proxy) => {
    proxy.delayMs = 150;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      const started = performance.now();
      assert.deepEqual(await roundTrip(conn, hello, 5000), hello);
      // Up and down are each held back once.
      assert.ok(performance.now() - started >= 290, "the round trip was not delayed");
    } finally {
      conn.close();
    }
  }));

Deno.test("fault proxy: a bandwidth bound paces what goes up", () =>
  withProxy(async (proxy) => {
    proxy.upBytesPerSecond = 512 << 10;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    try {
      const bytes = new Uint8Array(256 << 10).map((_, i) => i % 251);
      const got = new Uint8Array(bytes.length);
      const started = performance.now();
      // Written and read back at once: the echo may wait for its reader.
      await Promise.all([
        (async () => {
          for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
        })(),
        (async () => {
          for (let at = 0; at < got.length;) {
            const n = await conn.read(got.subarray(at));
            if (n === null) throw new Error(`the echo ended after ${at} bytes`);
            at += n;
          }
        })(),
      ]);
      const took = performance.now() - started;
      assert.deepEqual(got, bytes);
      // 256 KiB at 512 KiB/s: half a second, less the first chunk, which goes at once.
      assert.ok(took >= 350, `256 KiB went up in ${took.toFixed(0)} ms`);
    } finally {
      conn.close();
    }
  }));

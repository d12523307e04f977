/**
 * The log stream's two ends over a real socket: only a peer that answers the
 * nonce with the pair token's MAC gets a request through; a request reaches
 * the appliance's handler as the HTTP request it stands for; anything else
 * closes the connection.
 */
import assert from "node:assert/strict";
import { LogStreamServer, MAX_UNAUTHENTICATED } from "../../src/edge-dest/log-stream-server.ts";
import { LogStreamClient } from "../../src/edge-source/mirror/log-stream-client.ts";
import {
  decodeHello,
  encodeRequestHead,
  HELLO_BYTES,
  readExactly,
  streamMac,
  writeAll,
} from "../../src/protocol/log-stream/mod.ts";
import { createLogger, type Logger } from "../../src/logging/mod.ts";

const TOKEN = "stream-token";

/** A logger that keeps its lines, parsed. */
function memoryLogger(): Logger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return Object.assign(createLogger({ level: "debug", sink: (l) => lines.push(JSON.parse(l)) }), {
    lines,
  });
}

/** A server whose handler records each request and answers with its body's length. */
async function withServer(
  fn: (
    server: LogStreamServer,
    seen: Request[],
    bodies: Uint8Array[],
    log: ReturnType<typeof memoryLogger>,
  ) => Promise<void>,
  helloTimeoutMs = 5000,
  bodyIdleTimeoutMs = 30_000,
): Promise<void> {
  const seen: Request[] = [];
  const bodies: Uint8Array[] = [];
  const log = memoryLogger();
  const server = LogStreamServer.listen({
    host: "127.0.0.1",
    port: 0,
    token: () => TOKEN,
    handler: async (req) => {
      seen.push(req);
      const body = new Uint8Array(await req.arrayBuffer());
      bodies.push(body);
      return Response.json({ lastLsn: body.length }, {
        headers: { "x-seen": String(seen.length) },
      });
    },
    helloTimeoutMs,
    bodyIdleTimeoutMs,
    logger: log,
  });
  try {
    await fn(server, seen, bodies, log);
  } finally {
    await server.close();
  }
}

/** Connects raw and reads the hello's nonce. */
async function rawConnect(port: number): Promise<{ conn: Deno.Conn; nonce: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const nonce = decodeHello((await readExactly(conn, HELLO_BYTES))!);
  return { conn, nonce };
}

/** True when the peer closes the connection within `ms`, reading (and dropping) what it sends. */
async function closedByPeer(conn: Deno.Conn, ms = 5000): Promise<boolean> {
  const buf = new Uint8Array(64);
  const deadline = Date.now() + ms;
  for (let i = 0; i < 100 && Date.now() < deadline; i++) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"late">((r) => timer = setTimeout(() => r("late"), deadline - Date.now())),
    ]).finally(() => clearTimeout(timer));
    if (n === null) return true;
    if (n === "late") return false;
  }
  return false;
}

Deno.test("log stream: a batch reaches the handler as POST /v1/repl/log with the pair token; its answer comes back", async () => {
  await withServer(async (server, seen, bodies) => {
    const client = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    try {
      for (const n of [0, 1, 5000, 3 << 20]) {
        const body = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536))).slice();
        const big = new Uint8Array(n);
        for (let at = 0; at < n; at += body.length) {
          big.set(body.subarray(0, Math.min(body.length, n - at)), at);
        }
        const res = await client.send(
          "/v1/repl/log",
          new Headers({ "content-type": "application/octet-stream", "x-epoch": "7" }),
          big,
        );
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { lastLsn: n });
        assert.equal(res.headers.get("x-seen"), String(seen.length));
        const req = seen[seen.length - 1];
        assert.equal(req.method, "POST");
        assert.equal(new URL(req.url).pathname, "/v1/repl/log");
        assert.equal(req.headers.get("authorization"), `Bearer ${TOKEN}`);
        assert.equal(req.headers.get("x-epoch"), "7");
        assert.equal(req.headers.get("content-length"), String(n));
        assert.deepEqual(bodies[bodies.length - 1], big);
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("log stream: requests sent before the answers reach the handler in order; each answer is its own", async () => {
  await withServer(async (server, seen, bodies) => {
    const client = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    try {
      // Sizes chosen so the answers are told apart by their content: a big body between small.
      const sizes = [3, 1 << 20, 7, 200_000, 1];
      const sent = sizes.map((n, i) =>
        client.send("/v1/repl/log", new Headers({ "x-n": String(i) }), new Uint8Array(n).fill(i))
      );
      const answers = await Promise.all(sent);
      assert.deepEqual(
        await Promise.all(answers.map((res) => res.json())),
        sizes.map((n) => ({ lastLsn: n })),
      );
      assert.deepEqual(answers.map((res) => res.headers.get("x-seen")), ["1", "2", "3", "4", "5"]);
      assert.deepEqual(seen.map((req) => req.headers.get("x-n")), ["0", "1", "2", "3", "4"]);
      for (const [i, n] of sizes.entries()) assert.deepEqual(bodies[i], new Uint8Array(n).fill(i));
    } finally {
      client.close();
    }
  });
});

Deno.test("log stream: when the stream breaks, every request sent on it fails", async () => {
  await withServer(async (server) => {
    const client = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    try {
      const abort = new AbortController();
      const sent = [1, 2, 3].map((n) =>
        client.send("/v1/repl/log", new Headers(), new Uint8Array(n << 20), abort.signal)
      );
      abort.abort(); // its deadline passed: the connection is closed under all three
      const outcomes = await Promise.allSettled(sent);
      assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected", "rejected"]);
      assert.ok(client.closed);
    } finally {
      client.close();
    }
  });
});

Deno.test("log stream: a wrong MAC, no answer, or a wrong token gets nothing through, and is logged", async () => {
  await withServer(async (server, seen, _bodies, log) => {
    // A wrong MAC: closed.
    const a = await rawConnect(server.port);
    await writeAll(a.conn, streamMac("not-the-token", a.nonce));
    assert.ok(await closedByPeer(a.conn), "a wrong MAC closes the connection");
    a.conn.close();
    // The right MAC of another nonce (a replay): closed.
    const b = await rawConnect(server.port);
    await writeAll(b.conn, streamMac(TOKEN, new Uint8Array(16)));
    assert.ok(await closedByPeer(b.conn), "a replayed MAC closes the connection");
    b.conn.close();
    // No answer to the hello: closed after the hello timeout.
    const c = await rawConnect(server.port);
    assert.ok(await closedByPeer(c.conn), "a silent peer is closed");
    c.conn.close();
    // The client with the wrong token is refused at open.
    await assert.rejects(
      LogStreamClient.open("127.0.0.1", server.port, "wrong", 5000),
      /did not accept/,
    );
    assert.equal(seen.length, 0, "no request reached the handler");
    const refused = log.lines.filter((l) => l.event === "auth.refused");
    assert.equal(refused.length, 4, JSON.stringify(log.lines));
    assert.deepEqual(refused.map((l) => l.reason), [
      "wrong",
      "wrong",
      "no answer to the hello",
      "wrong",
    ]);
  }, 300);
});

Deno.test("log stream: another path is a 404; a malformed or oversized message closes the connection", async () => {
  await withServer(async (server, seen) => {
    const client = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    const res = await client.send("/v1/repl/cp", new Headers(), new Uint8Array(3));
    assert.equal(res.status, 404);
    assert.match((await res.json()).message, /carries POST \/v1\/repl\/log only/);
    client.close();
    for (
      const bad of [
        // A head longer than the limit.
        new Uint8Array([0xff, 0xff, 0xff, 0x7f]),
        // A body longer than the limit.
        (() => {
          const head = encodeRequestHead("POST", "/v1/repl/log", new Headers(), 0);
          new DataView(head.buffer).setUint32(head.length - 4, 0xffffffff, true);
          return head;
        })(),
        // A header line without ": ".
        (() => {
          const text = new TextEncoder().encode("POST /v1/repl/log\nbroken\n");
          const out = new Uint8Array(4 + text.length + 4);
          new DataView(out.buffer).setUint32(0, text.length, true);
          out.set(text, 4);
          return out;
        })(),
      ]
    ) {
      const { conn, nonce } = await rawConnect(server.port);
      await writeAll(conn, streamMac(TOKEN, nonce));
      assert.deepEqual(await readExactly(conn, 1), new Uint8Array([1]), "accepted");
      await writeAll(conn, bad);
      assert.ok(await closedByPeer(conn), "the malformed message closes the stream");
      conn.close();
    }
    assert.equal(seen.length, 0, "none reached the handler");
  });
});

Deno.test("log stream: an authenticated connection replaces the one before; a send on a closed client fails", async () => {
  await withServer(async (server) => {
    const first = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    const second = await LogStreamClient.open("127.0.0.1", server.port, TOKEN, 5000);
    try {
      const ok = await second.send("/v1/repl/log", new Headers(), new Uint8Array(10));
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
      await assert.rejects(first.send("/v1/repl/log", new Headers(), new Uint8Array(10)));
      assert.ok(first.closed);
      await assert.rejects(first.send("/v1/repl/log", new Headers(), new Uint8Array(1)), /closed/);
    } finally {
      first.close();
      second.close();
    }
  });
});

Deno.test("log stream: connections waiting for their hello's answer are bounded; past the bound, closed at once", async () => {
  await withServer(async (server) => {
    const waiting = [];
    for (let i = 0; i < MAX_UNAUTHENTICATED; i++) waiting.push(await rawConnect(server.port));
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    assert.ok(await closedByPeer(extra, 1000), "one more is closed at once");
    extra.close();
    for (const w of waiting) w.conn.close();
    // Their slots free up as the server sees them go: a source gets in again.
    const client = await eventuallyOpen(server.port);
    client.close();
  });
});

/** Opens a client, retrying while the server frees its slots (bounded: 50 tries in 5 s). */
async function eventuallyOpen(port: number): Promise<LogStreamClient> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      return await LogStreamClient.open("127.0.0.1", port, TOKEN, 1000);
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw last;
}

Deno.test("log stream: a request that stalls inside its body closes the stream; an idle stream stays open", async () => {
  await withServer(
    async (server, seen) => {
      const { conn, nonce } = await rawConnect(server.port);
      try {
        await writeAll(conn, streamMac(TOKEN, nonce));
        assert.deepEqual(await readExactly(conn, 1), new Uint8Array([1]), "accepted");
        // Idle between requests for longer than the stall bound: nothing happens.
        await new Promise((r) => setTimeout(r, 400));
        // A head announcing 100 body bytes, then 10 of them, then nothing.
        await writeAll(conn, encodeRequestHead("POST", "/v1/repl/log", new Headers(), 100));
        await writeAll(conn, new Uint8Array(10));
        assert.ok(await closedByPeer(conn, 3000), "the stalled request closes the stream");
        assert.equal(seen.length, 0, "the handler never saw it");
      } finally {
        conn.close();
      }
    },
    5000,
    200,
  );
});

/**
 * `GET /metrics` of a real pair (processes on 127.0.0.1): after native and S3
 * writes, a CP and reads, both appliances serve every family with the values
 * the run implies — CPs taken, client bytes in and out, requests by face, op
 * and status, the mirror's state and lag, and log wire bytes equal to
 * `/v1/admin/stats` and to what the destination received — and pass
 * `promtool check metrics` when it is installed. A promoted destination
 * keeps serving them.
 */
import assert from "node:assert/strict";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { MIRROR_STATES } from "../../src/protocol/mirror-state/mod.ts";
import { HEADER_SIZE } from "../../src/protocol/log-frame/mod.ts";
import {
  adminCp,
  bearer,
  call,
  callJson,
  eventually,
  spawnMirroredSource,
  spawnPair,
  statsOf,
  stopAll,
} from "../mirror/pair.ts";
import { type ApplianceProcess, withTempDir } from "../support/appliance.ts";
import { CREDS, sdkClient, spawnS3Pair } from "../s3/helpers.ts";

/** The families the issue asks for, on both appliances. */
const FAMILIES = [
  "refsync_mirror_state",
  "refsync_mirror_lag_bytes",
  "refsync_mirror_lag_records",
  "refsync_mirror_lag_seconds",
  "refsync_cp_total",
  "refsync_cp_duration_seconds",
  "refsync_wire_bytes_total",
  "refsync_client_requests_total",
  "refsync_client_bytes_total",
  "refsync_put_duration_seconds",
  "refsync_fsync_duration_seconds",
  "process_resident_memory_bytes",
  "process_cpu_seconds_total",
];

/** A scrape: the text, its families (from TYPE lines) and every sample by its series. */
interface Scrape {
  text: string;
  types: Map<string, string>;
  samples: Map<string, number>;
}

async function scrape(p: ApplianceProcess): Promise<Scrape> {
  // No Authorization header: /metrics is open, like /v1/admin/stats.
  const a = await call(`${p.url}/metrics`);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of a.text.split("\n")) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text: a.text, types, samples };
}

/** The value of `series` (exactly as written, labels included); fails when absent. */
function value(s: Scrape, series: string): number {
  const v = s.samples.get(series);
  assert.notEqual(v, undefined, `no sample ${series} in:\n${s.text}`);
  return v!;
}

/** The mirror state that is 1 (and checks that every other one is 0). */
function stateOf(s: Scrape): string {
  const on = MIRROR_STATES.filter((st) => value(s, `refsync_mirror_state{state="${st}"}`) === 1);
  for (const st of MIRROR_STATES) {
    assert.ok([0, 1].includes(value(s, `refsync_mirror_state{state="${st}"}`)));
  }
  assert.equal(on.length, 1, `one state is 1, got ${on}`);
  return on[0];
}

/** The promtool binary, or null when it is not installed. */
function promtool(): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(":")) {
    try {
      if (Deno.statSync(`${dir}/promtool`).isFile) return `${dir}/promtool`;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

/** `promtool check metrics` on `text`: its exit code and what it printed. */
async function promtoolCheck(bin: string, text: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(bin, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    const out = await child.output();
    const dec = new TextDecoder();
    return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

Deno.test("GET /metrics on both appliances: the families, their values, promtool", async (t) => {
  await withTempDir("refsync-metrics-", async (dir) => {
    const pair = await spawnS3Pair(dir);
    const { src, dst } = pair;
    const s3 = sdkClient(src.s3Url!);
    const wrong = sdkClient(src.s3Url!, { ...CREDS, secretKey: "not-the-secret" });
    try {
      const a = bytes(300_000, 1);
      const b = bytes(3 << 20, 2); // more than one log record: a transaction
      const patch = bytes(1000, 3);
      const put = async (
        key: string,
        body: Uint8Array<ArrayBuffer>,
        headers: Record<string, string> = {},
      ) => (await call(`${src.url}/v1/objects/${key}`, { method: "PUT", body, headers })).status;
      assert.equal(await put("a", a), 201);
      assert.equal(await put("b", b), 201);
      assert.equal(await put("a", patch, { "Content-Range": "bytes 5000-5999/*" }), 200);
      await s3.send(new CreateBucketCommand({ Bucket: "bkt" }));
      const s3Body = bytes(70_000, 4);
      await s3.send(new PutObjectCommand({ Bucket: "bkt", Key: "k", Body: s3Body }));
      const refused = await wrong.send(
        new PutObjectCommand({ Bucket: "bkt", Key: "x", Body: "no" }),
      )
        .then(() => 0, (e) => e.$metadata?.httpStatusCode);
      assert.equal(refused, 403);
      const written = a.length + b.length + patch.length + s3Body.length;

      await adminCp(src);
      const whole = await call(`${src.url}/v1/objects/b`);
      assert.equal(whole.status, 200);
      const part = await call(`${src.url}/v1/objects/a`, { headers: { Range: "bytes=10-109" } });
      assert.equal(part.status, 206);
      const got = await s3.send(new GetObjectCommand({ Bucket: "bkt", Key: "k" }));
      assert.equal((await got.Body!.transformToByteArray()).length, s3Body.length);
      const read = b.length + 100 + s3Body.length;
      // The destination refuses writes and serves its last CP.
      assert.equal(
        (await call(`${dst.url}/v1/objects/z`, { method: "PUT", body: "z" })).status,
        403,
      );
      assert.equal((await call(`${dst.url}/v1/objects/a`)).status, 200);

      const [ms, md] = [await scrape(src), await scrape(dst)];
      const [ss, sd] = [await statsOf(src), await statsOf(dst)];

      await t.step("every family, typed, on both appliances", () => {
        for (const s of [ms, md]) {
          for (const f of FAMILIES) assert.ok(s.types.has(f), `${f} missing in:\n${s.text}`);
          assert.equal(s.types.get("refsync_cp_duration_seconds"), "histogram");
          assert.equal(s.types.get("refsync_wire_bytes_total"), "counter");
          assert.ok(value(s, "process_resident_memory_bytes") > 0);
          assert.ok(value(s, "process_cpu_seconds_total") > 0);
          assert.ok(value(s, "refsync_fsync_duration_seconds_count") > 0);
          assert.equal(
            value(s, 'refsync_fsync_duration_seconds_bucket{le="+Inf"}'),
            value(s, "refsync_fsync_duration_seconds_count"),
          );
        }
      });

      await t.step(
        "CPs: the one taken, committed on the source and applied on the destination",
        () => {
          for (const s of [ms, md]) {
            assert.equal(value(s, "refsync_cp_total"), 1);
            assert.equal(value(s, "refsync_cp_duration_seconds_count"), 1);
          }
        },
      );

      await t.step("log wire bytes: the source's stats, and what the destination received", () => {
        const sent = value(ms, 'refsync_wire_bytes_total{kind="log"}');
        assert.equal(sent, ss.wire.logBytes);
        assert.equal(value(md, 'refsync_wire_bytes_total{kind="log"}'), sent);
        assert.equal(sd.wire.logBytes, sent);
        assert.ok(sent > written, `frames carry the ${written} bytes written and headers: ${sent}`);
        const cpSync = value(ms, 'refsync_wire_bytes_total{kind="cp_sync"}');
        assert.equal(cpSync, ss.wire.cpSyncBytes);
        assert.ok(cpSync > 0);
        assert.equal(value(md, 'refsync_wire_bytes_total{kind="cp_sync"}'), cpSync);
      });

      await t.step("client bytes and requests, by face, op and status", () => {
        assert.equal(value(ms, 'refsync_client_bytes_total{direction="in"}'), written);
        assert.equal(value(ms, 'refsync_client_bytes_total{direction="out"}'), read);
        const req = (s: Scrape, face: string, op: string, status: number) =>
          value(s, `refsync_client_requests_total{face="${face}",op="${op}",status="${status}"}`);
        assert.equal(req(ms, "native", "put", 201), 2);
        assert.equal(req(ms, "native", "put", 200), 1);
        assert.equal(req(ms, "native", "get", 200), 1);
        assert.equal(req(ms, "native", "get", 206), 1);
        assert.equal(req(ms, "s3", "CreateBucket", 200), 1);
        assert.equal(req(ms, "s3", "PutObject", 200), 1);
        assert.equal(req(ms, "s3", "PutObject", 403), 1); // the wrong secret: named, then refused
        assert.equal(req(ms, "s3", "GetObject", 200), 1);
        // Acknowledged writes of a body: 3 native PUTs and 1 PutObject (not the refused one).
        assert.equal(value(ms, "refsync_put_duration_seconds_count"), 4);
        assert.equal(req(md, "native", "put", 403), 1);
        assert.equal(req(md, "native", "get", 200), 1);
        assert.equal(value(md, 'refsync_client_bytes_total{direction="in"}'), 0);
        assert.equal(value(md, 'refsync_client_bytes_total{direction="out"}'), a.length);
        assert.equal(value(md, "refsync_put_duration_seconds_count"), 0);
        // Admin, replication and /metrics calls are not client requests.
        assert.doesNotMatch(ms.text + md.text, /op="(cp|stats|metrics|repl)/);
      });

      await t.step("mirror state and lag", () => {
        assert.equal(stateOf(ms), "in-sync");
        assert.equal(stateOf(md), "destination");
        // Every write was acknowledged before it was answered: nothing is owed.
        for (const lag of ["bytes", "records", "seconds"]) {
          assert.equal(value(ms, `refsync_mirror_lag_${lag}`), 0);
          assert.equal(value(md, `refsync_mirror_lag_${lag}`), 0);
        }
      });

      await t.step("promtool check metrics passes on both scrapes", async (t) => {
        const bin = promtool();
        if (bin === null) {
          console.log("promtool is not installed (Debian: apt-get install prometheus): skipped");
          return;
        }
        for (const [name, s] of [["source", ms], ["destination", md]] as const) {
          await t.step(name, async () => {
            const { code, out } = await promtoolCheck(bin, s.text);
            assert.equal(out, "", out);
            assert.equal(code, 0);
          });
        }
      });

      await t.step("a promoted destination keeps serving /metrics", async () => {
        const promoted = await callJson(`${dst.url}/v1/admin/promote`, {
          method: "POST",
          headers: bearer(pair.token),
        });
        assert.equal(promoted.status, 200, promoted.text);
        const after = await scrape(dst);
        assert.equal(stateOf(after), "local");
        assert.equal(value(after, "refsync_cp_total"), 2); // the CP applied, then the promotion's
        assert.equal(
          (await call(`${dst.url}/v1/objects/c`, { method: "PUT", body: "cc" })).status,
          201,
        );
        const again = await scrape(dst);
        assert.equal(
          value(again, 'refsync_client_requests_total{face="native",op="put",status="201"}'),
          1,
        );
        assert.equal(value(again, 'refsync_client_bytes_total{direction="in"}'), 2);
      });
    } finally {
      s3.destroy();
      wrong.destroy();
      await pair.stop();
    }
  });
});

Deno.test("refsync_mirror_lag_bytes: the log bytes the destination has not acknowledged", async () => {
  await withTempDir("refsync-metrics-lag-", async (dir) => {
    const pair = await spawnPair(dir, {
      sourceArgs: ["--cp-interval", "0", "--sync-timeout", "1000"],
      destArgs: ["--cp-interval", "0"],
    });
    let stopped = false;
    try {
      const put = (key: string, body: Uint8Array<ArrayBuffer>) =>
        call(`${pair.src.url}/v1/objects/${key}`, { method: "PUT", body });
      assert.equal((await put("warm", bytes(10, 1))).status, 201);
      assert.equal(value(await scrape(pair.src), "refsync_mirror_lag_bytes"), 0);
      // A stalled destination: the write is logged and forwarded, never confirmed (503).
      Deno.kill(pair.dst.pid, "SIGSTOP");
      stopped = true;
      assert.equal((await put("L", bytes(10_000, 2))).status, 503);
      // One record of one frame: header, the key "L", the payload.
      const behind = await scrape(pair.src);
      assert.equal(value(behind, "refsync_mirror_lag_bytes"), HEADER_SIZE + 1 + 10_000);
      assert.equal(value(behind, "refsync_mirror_lag_records"), 1);
      // The record was written over a second ago (the 503 came after --sync-timeout).
      const seconds = value(behind, "refsync_mirror_lag_seconds");
      assert.ok(seconds >= 0.9 && seconds < 60, `lag seconds ${seconds}`);
      Deno.kill(pair.dst.pid, "SIGCONT");
      stopped = false;
      // The record stays queued and reaches the destination once it runs again.
      await eventually("the destination acknowledges the record", async () => {
        const lag = value(await scrape(pair.src), "refsync_mirror_lag_bytes");
        return lag === 0 ? true : undefined;
      });
    } finally {
      if (stopped) Deno.kill(pair.dst.pid, "SIGCONT");
      await pair.stop();
    }
  });
});

Deno.test("refsync_mirror_lag_*: 0 after a restart until a handshake told what the destination holds, not the whole log", async () => {
  await withTempDir("refsync-metrics-lag-restart-", async (dir) => {
    const pair = await spawnPair(dir, {
      sourceArgs: ["--cp-interval", "0", "--sync-timeout", "1000"],
      destArgs: ["--cp-interval", "0"],
    });
    let src: ApplianceProcess | null = pair.src;
    try {
      for (let i = 0; i < 3; i++) {
        const a = await call(`${src.url}/v1/objects/k${i}`, {
          method: "PUT",
          body: bytes(20_000, i),
        });
        assert.equal(a.status, 201, a.text);
      }
      // Every record is on the destination; the source restarts while the destination is away.
      await pair.dst.kill();
      await src.stop();
      src = await spawnMirroredSource(`${dir}/source`, pair.dst.url, pair.token, [
        "--cp-interval",
        "0",
        "--sync-timeout",
        "1000",
      ]);
      const s = await scrape(src);
      for (const lag of ["bytes", "records", "seconds"]) {
        assert.equal(value(s, `refsync_mirror_lag_${lag}`), 0, `lag ${lag} before a handshake`);
      }
    } finally {
      await stopAll(src, pair.dst);
    }
  });
});

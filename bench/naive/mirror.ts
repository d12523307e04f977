/**
 * The naive synchronous mirror the benchmark measures refsync against
 * (`--modes naive`): the simplest thing a user would write instead, written
 * plainly and fairly.
 *
 * `--role source --dest URL`: a `PUT /v1/objects/{key}` body is read whole,
 * appended to `DATA/log` and fdatasync'ed, and at the same time forwarded
 * with `fetch` to the destination, which appends it to its own `DATA/log` and
 * fdatasyncs; the client gets `201` once both are durable (`503` when the
 * destination failed: not acknowledged). `--role dest` does the local half.
 * One fdatasync per request (no group commit, no batching); appends are
 * serialized so records never interleave. No CPs, no index, no GET, no
 * auth, no integrity check: that is what makes it naive. `GET /v1/admin/stats`
 * has the counters the bench reads, in refsync's shape. Prints refsync's
 * `{"event":"listening",...}` line on stdout; SIGTERM stops it.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    role: { type: "string" },
    data: { type: "string" },
    dest: { type: "string" },
    port: { type: "string", default: "0" },
  },
});
const role = values.role;
if (
  (role !== "source" && role !== "dest") || !values.data || (role === "source") !== !!values.dest
) {
  console.error(
    "usage: mirror.ts --role source --dest URL --data DIR | --role dest --data DIR [--port N]",
  );
  Deno.exit(2);
}
await Deno.mkdir(values.data, { recursive: true });
const log = await Deno.open(`${values.data}/log`, { create: true, append: true });
const stats = {
  client: { bytesWritten: 0, puts: 0 },
  wire: {
    logBytes: 0,
    logFrames: 0,
    cpSyncBytes: 0,
    cpBlocks: { data: 0, logRef: 0, patch: 0, copy: 0, zero: 0, diff: 0 },
  },
  cp: { committed: 0, lastDurationMs: 0 },
  durableBytes: 0,
};
let appending = Promise.resolve();

/** Appends `body` to the log and fdatasyncs; resolves once it is durable. */
async function append(body: Uint8Array): Promise<void> {
  const written = appending.then(async () => {
    for (let at = 0; at < body.length;) at += await log.write(body.subarray(at));
  });
  appending = written.catch(() => {});
  await written;
  await log.syncData();
  stats.durableBytes += body.length;
}

async function forward(path: string, req: Request, body: Uint8Array): Promise<boolean> {
  const range = req.headers.get("content-range");
  const res = await fetch(`${values.dest}${path}`, {
    method: "PUT",
    headers: range ? { "content-range": range } : {},
    body: body as Uint8Array<ArrayBuffer>,
  }).catch(() => null);
  await res?.body?.cancel();
  if (res?.ok) {
    stats.wire.logBytes += body.length;
    stats.wire.logFrames++;
  }
  return res?.ok ?? false;
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(values.port),
  onListen: ({ port }) =>
    console.log(
      JSON.stringify({ event: "listening", role, url: `http://127.0.0.1:${port}`, port }),
    ),
}, async (req) => {
  const path = new URL(req.url).pathname;
  if (req.method === "GET" && path === "/v1/admin/stats") return Response.json(stats);
  if (req.method !== "PUT" || !path.startsWith("/v1/objects/")) {
    return new Response(null, { status: 404 });
  }
  const body = new Uint8Array(await req.arrayBuffer());
  const [, mirrored] = await Promise.all([
    append(body),
    role === "source" ? forward(path, req, body) : true,
  ]);
  if (!mirrored) {
    return Response.json({ error: "unavailable", message: "destination failed" }, { status: 503 });
  }
  if (role === "dest") {
    stats.wire.logBytes += body.length;
    stats.wire.logFrames++;
  }
  stats.client.bytesWritten += body.length;
  stats.client.puts++;
  return Response.json({ size: body.length }, { status: 201 });
});
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  log.close();
  Deno.exit(0);
});

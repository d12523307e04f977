/**
 * One mapping from domain errors to HTTP answers: each code has its status,
 * an unexpected failure is a logged 500 with a JSON body.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { RefsyncError } from "../../src/errors/mod.ts";
import { errorHandler, STATUS_OF } from "../../src/http/errors.ts";
import { asS3Error } from "../../src/s3/errors.ts";
import { createLogger, type Logger, rootLogger, setRootLogger } from "../../src/logging/mod.ts";

function app(fail: () => never, logger?: Logger): Hono {
  const a = new Hono();
  a.onError(errorHandler(logger));
  a.get("/x", () => fail());
  return a;
}

Deno.test("http errors: each domain code is answered with its status and JSON", async () => {
  const expected = {
    no_space: 507,
    precondition_failed: 412,
    fenced: 403,
    not_found: 404,
    corrupt: 500,
  };
  for (const [code, status] of Object.entries(expected)) {
    const res = await app(() => {
      throw new RefsyncError(code as keyof typeof STATUS_OF, `because ${code}`, { extra: 1 });
    }).request("/x");
    assert.equal(res.status, status, code);
    assert.deepEqual(await res.json(), { error: code, message: `because ${code}`, extra: 1 });
  }
  const res = await app(() => {
    throw new RefsyncError("unauthorized", "no token");
  }).request("/x");
  assert.equal(res.status, 401);
  assert.match(res.headers.get("WWW-Authenticate") ?? "", /^Bearer /);
  await res.body?.cancel();
});

/** Runs `fn` with the root logger's lines kept in `lines`; the root logger is restored after. */
async function withRootLines(fn: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const saved = rootLogger();
  setRootLogger(createLogger({ sink: (l) => lines.push(l) }));
  try {
    await fn(lines);
  } finally {
    setRootLogger(saved);
  }
}

Deno.test("http errors: an internal failure is a logged 500, never a 4xx", async () => {
  await withRootLines(async (lines) => {
    const res = await app(() => {
      throw new Error("EIO: i/o error, write");
    }).request("/x");
    assert.equal(res.status, 500);
    const body = await res.json();
    assert.equal(body.error, "internal");
    assert.match(body.message, /EIO/);
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]).event, "http.internal_error");
  });
});

Deno.test("http errors: an internal failure is logged to the appliance's logger when it has one", async () => {
  await withRootLines(async (root) => {
    const own: string[] = [];
    const res = await app(() => {
      throw new Error("EBADF: bad file descriptor");
    }, createLogger({ sink: (l) => own.push(l) })).request("/x");
    assert.equal(res.status, 500);
    await res.body?.cancel();
    assert.deepEqual(own.map((l) => JSON.parse(l).event), ["http.internal_error"]);
    assert.deepEqual(
      root,
      [],
      "not the root logger: the simulator hears only its processes' loggers",
    );
  });
});

Deno.test("http errors: a damaged block is a 500 on both faces (corrupt; S3 InternalError)", () => {
  const e = new RefsyncError("corrupt", "data block 9 of 'a' does not match");
  assert.equal(STATUS_OF[e.code], 500);
  const s3 = asS3Error(e);
  assert.deepEqual([s3?.code, s3?.status, s3?.message], ["InternalError", 500, e.message]);
});

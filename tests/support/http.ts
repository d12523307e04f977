/**
 * HTTP helpers for end-to-end tests: every helper consumes or cancels the
 * response body (Deno's sanitizers flag a body left open), and raw-socket
 * requests for malformed HTTP.
 *
 * @module
 */
import assert from "node:assert/strict";

/** A response read to the end. */
export interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
  /** The body as text. */
  text: string;
}

/** `fetch` and read the whole body. Throws on network errors, never leaves a body open. */
export async function request(url: string, init?: RequestInit): Promise<Answer> {
  const res = await fetch(url, init);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, bytes, text: new TextDecoder().decode(bytes) };
}

/** Like {@link request}, parsing the body as JSON (throws with the body text when it is not). */
export async function requestJson<T = Record<string, unknown>>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; headers: Headers; json: T }> {
  const a = await request(url, init);
  try {
    return { status: a.status, headers: a.headers, json: JSON.parse(a.text) as T };
  } catch {
    throw new Error(
      `${init?.method ?? "GET"} ${url}: ${a.status} with a non-JSON body: ${a.text.slice(0, 300)}`,
    );
  }
}

/** The URL of object `key` (each path segment percent-encoded, `/` kept). */
export function objectUrl(base: string, key: string): string {
  return `${base}/v1/objects/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/** Whole-object PUT; resolves with the status and the JSON answer. */
export function putObject(
  base: string,
  key: string,
  body: Uint8Array | ReadableStream<Uint8Array> | string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: PutAnswer }> {
  return requestJson<PutAnswer>(objectUrl(base, key), {
    method: "PUT",
    body: body as BodyInit,
    headers,
  });
}

/** Ranged write of `body` at `offset` (`Content-Range: bytes a-b/*`). */
export function putRange(
  base: string,
  key: string,
  offset: number,
  body: Uint8Array,
): Promise<{ status: number; headers: Headers; json: PutAnswer }> {
  return requestJson<PutAnswer>(objectUrl(base, key), {
    method: "PUT",
    body: body as BodyInit,
    headers: { "Content-Range": `bytes ${offset}-${offset + body.length - 1}/*` },
  });
}

/** The JSON of a PUT. */
export interface PutAnswer {
  key: string;
  size: number;
  etag: string | null;
  lsn: number;
  error?: string;
  message?: string;
}

/** GET an object: null when 404, else its bytes and ETag header. */
export async function getObject(
  base: string,
  key: string,
): Promise<{ bytes: Uint8Array; etag: string | null } | null> {
  const a = await request(objectUrl(base, key));
  if (a.status === 404) return null;
  assert.equal(a.status, 200, `GET ${key}: ${a.status} ${a.text.slice(0, 300)}`);
  return { bytes: a.bytes, etag: a.headers.get("ETag") };
}

/**
 * Asserts a JSON error answer `{error, message}` with `status`; returns it.
 * `context` names the case in the failure message.
 */
export function assertJsonError(
  a: Answer,
  status: number | number[],
  context: string,
): { error: string; message: string } {
  const ok = Array.isArray(status) ? status.includes(a.status) : a.status === status;
  assert.ok(ok, `${context}: status ${a.status}, want ${status}; body: ${a.text.slice(0, 300)}`);
  const type = a.headers.get("Content-Type") ?? "";
  assert.match(type, /application\/json/, `${context}: Content-Type '${type}' is not JSON`);
  let body: { error?: unknown; message?: unknown };
  try {
    body = JSON.parse(a.text);
  } catch {
    throw new Error(`${context}: body is not JSON: ${a.text.slice(0, 300)}`);
  }
  assert.equal(typeof body.error, "string", `${context}: no 'error' string in ${a.text}`);
  assert.equal(typeof body.message, "string", `${context}: no 'message' string in ${a.text}`);
  assert.ok((body.message as string).length > 0, `${context}: empty message`);
  return body as { error: string; message: string };
}

/** What a raw socket exchange gave. */
export interface RawAnswer {
  /** Everything received until the peer closed or the timeout. */
  text: string;
  /** The status code of the first status line, or null when none came. */
  status: number | null;
  /** True when the peer closed the connection (EOF or reset) within the timeout. */
  closed: boolean;
}

/**
 * Writes `bytes` to 127.0.0.1:`port` over a fresh TCP connection, then reads
 * until the server closes it, `timeoutMs` passes, or a whole response head
 * plus `Content-Length` body arrived. The connection is always closed.
 */
export async function rawExchange(
  port: number,
  bytes: Uint8Array | string,
  timeoutMs = 3000,
): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let received = new Uint8Array(0);
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    try {
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
    } catch {
      // The server may close before it has read everything: read what it said.
    }
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const buf = new Uint8Array(64 * 1024);
    for (let i = 0; i < 10_000; i++) {
      let n: number | null | "timeout";
      try {
        n = await Promise.race([conn.read(buf), deadline]);
      } catch {
        closed = true; // reset by peer
        break;
      }
      if (n === "timeout") break;
      if (n === null) {
        closed = true;
        break;
      }
      const next = new Uint8Array(received.length + n);
      next.set(received);
      next.set(buf.subarray(0, n), received.length);
      received = next;
      if (responseComplete(received)) break;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  const text = new TextDecoder().decode(received);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { text, status: m ? Number(m[1]) : null, closed };
}

function responseComplete(bytes: Uint8Array): boolean {
  const text = new TextDecoder().decode(bytes);
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  if (!m) {
    return /\r\ntransfer-encoding:\s*chunked/i.test(text.slice(0, end))
      ? text.endsWith("0\r\n\r\n")
      : true;
  }
  return bytes.length >= end + 4 + Number(m[1]);
}

/** What {@link streamingPut} got back. */
export interface StreamingPutAnswer {
  status: number;
  headers: Headers;
  text: string;
  /** Body bytes written (excluding chunk framing). */
  sent: number;
}

/**
 * PUTs `body` over a raw HTTP/1.1 connection to 127.0.0.1:`port`, writing
 * each chunk as it comes (never holding the body): with `length` it sends
 * `Content-Length: length`, else `Transfer-Encoding: chunked` (one HTTP chunk
 * per stream chunk). Reads the answer until the server closes or its
 * `Content-Length` arrived. `signal` aborts by closing the connection.
 *
 * Why not fetch: Deno's fetch sends every ReadableStream body chunked, and
 * Deno's HTTP server decodes large chunked bodies slowly (see the report);
 * this makes a Content-Length upload of any size possible.
 */
export async function streamingPut(
  port: number,
  path: string,
  body: ReadableStream<Uint8Array>,
  opts: { length?: number; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<StreamingPutAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const enc = new TextEncoder();
  const abort = () => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  opts.signal?.addEventListener("abort", abort, { once: true });
  const write = async (bytes: Uint8Array) => {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  };
  let sent = 0;
  try {
    const chunked = opts.length === undefined;
    const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await write(enc.encode(
      `PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n` +
        (chunked ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${opts.length}\r\n`) +
        `${extra}\r\n`,
    ));
    const reader = body.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        if (chunk.length === 0) continue;
        if (chunked) await write(enc.encode(`${chunk.length.toString(16)}\r\n`));
        await write(chunk);
        if (chunked) await write(enc.encode("\r\n"));
        sent += chunk.length;
      }
      if (chunked) await write(enc.encode("0\r\n\r\n"));
    } catch (e) {
      // The server may answer (e.g. 413) and close before the body is sent: read its answer.
      if (opts.signal?.aborted) throw e;
      await reader.cancel().catch(() => {});
    } finally {
      reader.releaseLock();
    }
    // The answer: head, then Content-Length bytes (the server closes after it: Connection: close).
    let received = new Uint8Array(0);
    const buf = new Uint8Array(64 * 1024);
    for (let i = 0; i < 100_000; i++) {
      const n = await conn.read(buf);
      if (n === null) break;
      const next = new Uint8Array(received.length + n);
      next.set(received);
      next.set(buf.subarray(0, n), received.length);
      received = next;
      if (responseComplete(received)) break;
    }
    const text = new TextDecoder().decode(received);
    const headEnd = text.indexOf("\r\n\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
    if (!m || headEnd < 0) {
      throw new Error(`PUT ${path}: no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`);
    }
    const headers = new Headers();
    for (const line of text.slice(0, headEnd).split("\r\n").slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    return { status: Number(m[1]), headers, text: text.slice(headEnd + 4), sent };
  } finally {
    opts.signal?.removeEventListener("abort", abort);
    abort();
  }
}

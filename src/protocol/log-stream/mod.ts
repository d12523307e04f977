/**
 * The log stream: one long-lived TCP connection from a source to its
 * destination that carries log batches (`POST /v1/repl/log`, the same body,
 * headers and answer as over HTTP) without an HTTP request each. Deno's HTTP
 * stack costs about 1 CPU s/GiB on each side for a request body; a TCP
 * connection about 0.1 (docs/internals.md, section 6).
 *
 * ```
 * destination → source, on accept:  "RSLS" u8 version=1  16-byte nonce      (21 bytes)
 * source → destination:             HMAC-SHA256(pair token, "refsync-log-stream-1" ++ nonce)
 * destination → source:             u8 1 (accepted), or the connection is closed
 * then requests, each answered in turn; a request may follow the one before
 * unanswered, the answers come in the order of the requests (little-endian):
 *   request:  u32 headLength  head  u32 bodyLength  body
 *             head = "POST /v1/repl/log\n" then "name: value\n" per header (UTF-8)
 *   answer:   u16 status  u32 headLength  head  u32 bodyLength  body
 *             head = "name: value\n" per header
 * ```
 *
 * The token never crosses the connection; a peer without it cannot get past
 * the nonce. Lengths are checked against limits before anything is allocated.
 *
 * @example
 * ```ts
 * const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
 * const mac = streamMac("pair-token", nonce);
 * macMatches("pair-token", nonce, mac); // true
 * ```
 *
 * @module
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { equalBytes } from "../../bytes/mod.ts";
import { authHeader } from "../auth/mod.ts";

/** The hello's magic: "RSLS". */
export const STREAM_MAGIC = new Uint8Array([0x52, 0x53, 0x4c, 0x53]);
/** The stream's version, in the hello. */
export const STREAM_VERSION = 1;
/** Bytes of the destination's nonce. */
export const NONCE_BYTES = 16;
/** Bytes of the destination's hello: magic, version, nonce. */
export const HELLO_BYTES = STREAM_MAGIC.length + 1 + NONCE_BYTES;
/** Bytes of the source's answer to the hello. */
export const MAC_BYTES = 32;
/** The destination's byte after a good MAC. */
export const ACCEPTED = 1;
/** Longest head of a request or an answer. */
export const MAX_HEAD_BYTES = 16 << 10;
/** Longest request body: a log batch (8 MiB of frames at most, compressed or not), with room. */
export const MAX_REQUEST_BODY = 64 << 20;
/** Longest answer body (JSON). */
export const MAX_ANSWER_BODY = 1 << 20;
/** The only request the stream carries. */
export const LOG_PATH = "/v1/repl/log";

const DOMAIN = "refsync-log-stream-1";
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

/** What a connection is read from (a `Deno.Conn`, or a test's fake). */
export interface StreamReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** What a connection is written to. */
export interface StreamWriter {
  write(p: Uint8Array): Promise<number>;
}

/** The stream broke its format, or ended inside a message. */
export class StreamError extends Error {
  override name = "StreamError";
}

/** The MAC a source answers the destination's `nonce` with. */
export function streamMac(token: string, nonce: Uint8Array): Uint8Array {
  const h = createHmac("sha256", utf8.encode(token));
  h.update(utf8.encode(DOMAIN));
  h.update(nonce);
  return new Uint8Array(h.digest());
}

/** Whether `mac` is the answer to `nonce` under `token` (constant time). */
export function macMatches(token: string, nonce: Uint8Array, mac: Uint8Array): boolean {
  return mac.length === MAC_BYTES && timingSafeEqual(streamMac(token, nonce), mac);
}

/** The destination's hello carrying `nonce`. */
export function encodeHello(nonce: Uint8Array): Uint8Array {
  const out = new Uint8Array(HELLO_BYTES);
  out.set(STREAM_MAGIC, 0);
  out[STREAM_MAGIC.length] = STREAM_VERSION;
  out.set(nonce, STREAM_MAGIC.length + 1);
  return out;
}

/** The nonce of a destination's hello. @throws StreamError when it is no hello of this version. */
export function decodeHello(hello: Uint8Array): Uint8Array {
  if (
    hello.length !== HELLO_BYTES ||
    !equalBytes(hello.subarray(0, STREAM_MAGIC.length), STREAM_MAGIC)
  ) {
    throw new StreamError("the peer is no refsync log stream (bad hello)");
  }
  const version = hello[STREAM_MAGIC.length];
  if (version !== STREAM_VERSION) {
    throw new StreamError(`log stream version ${version}, this appliance speaks ${STREAM_VERSION}`);
  }
  return hello.slice(STREAM_MAGIC.length + 1);
}

/**
 * A reader that takes up to 64 KiB a read and serves small reads from it, so
 * a small request's length fields, head and body cost one read, not four; a
 * read of at least that much, with nothing buffered, goes straight into the
 * caller's buffer (a big body is not copied twice).
 */
export class BufferedReader implements StreamReader {
  readonly #inner: StreamReader;
  readonly #buf = new Uint8Array(64 << 10);
  #start = 0;
  #end = 0;

  constructor(inner: StreamReader) {
    this.#inner = inner;
  }

  /** Bytes read from the inner reader and not yet handed out. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (this.#start === this.#end) {
      if (p.length >= this.#buf.length) return await this.#inner.read(p);
      const n = await this.#inner.read(this.#buf);
      if (n === null) return null;
      this.#start = 0;
      this.#end = n;
    }
    const n = Math.min(p.length, this.#end - this.#start);
    p.set(this.#buf.subarray(this.#start, this.#start + n));
    this.#start += n;
    return n;
  }
}

/**
 * Requests in two stages, sending then answering, each stage in call order:
 * a request is answered after it was sent and after the one before it was
 * answered, and the next may be sent meanwhile (a stream's requests and
 * answers, pipelined). A stage that fails fails its own request; whether the
 * stream goes on is the caller's to say.
 *
 * @example
 * ```ts
 * const order = new InOrder();
 * const a = order.run(() => Promise.resolve(1), (sent) => Promise.resolve(sent * 10));
 * const b = order.run(() => Promise.resolve(2), (sent) => Promise.resolve(sent * 10));
 * console.log(await Promise.all([a, b])); // [10, 20], `b` answered after `a`
 * ```
 */
export class InOrder {
  #sent: Promise<unknown> = Promise.resolve();
  #answered: Promise<unknown> = Promise.resolve();

  /** Runs `send` after the sends before it, then `answer` after the answers before it. */
  run<S, A>(send: () => Promise<S>, answer: (sent: S) => Promise<A>): Promise<A> {
    const sent = this.#sent.then(send);
    this.#sent = sent.catch(() => {});
    // After the answers before it even when its own send failed: the order holds for the next.
    const answered = this.#answered.then(() => sent).then(answer);
    this.#answered = answered.catch(() => {});
    return answered;
  }
}

/** Writes all of `bytes`. */
export async function writeAll(w: StreamWriter, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await w.write(bytes.subarray(at));
}

/**
 * Exactly `n` bytes, or null when the stream ends before the first of them
 * (and `atBoundary`); an end after the first byte is a {@link StreamError}.
 */
export async function readExactly(
  r: StreamReader,
  n: number,
  atBoundary = false,
): Promise<Uint8Array | null> {
  const out = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const m = await r.read(out.subarray(got));
    if (m === null) {
      if (got === 0 && atBoundary) return null;
      throw new StreamError(`the stream ended ${got} bytes into a ${n}-byte read`);
    }
    got += m;
  }
  return out;
}

/** A request or an answer, as read. */
export interface StreamMessage {
  /** A request's "METHOD path"; an answer's status as text. */
  line: string;
  headers: Headers;
  body: Uint8Array;
  /** A request's: ms from its first bytes to its last (what the link took to carry it). */
  receiveMs?: number;
}

/**
 * The HTTP request a stream's request stands for, as the destination's
 * handler takes it: `POST` {@link LOG_PATH} with the pair `token` added (the
 * connection proved it) and its body the bytes read.
 *
 * @example
 * ```ts
 * const req = asHttpRequest(new Headers({ "refsync-seq": "0" }), new Uint8Array(3), "pair-token");
 * req.headers.get("authorization"); // "Bearer pair-token"
 * ```
 */
export function asHttpRequest(headers: Headers, body: Uint8Array, token: string): Request {
  const h = new Headers(headers);
  for (const [name, value] of Object.entries(authHeader(token))) h.set(name, value);
  h.set("content-length", String(body.length));
  return new Request(`http://log-stream${LOG_PATH}`, {
    method: "POST",
    headers: h,
    // A stream of the buffer read, not the buffer: a Request copies a BufferSource body.
    body: ReadableStream.from([body]),
  });
}

/** The bytes of a request's head and length fields (the body follows as it is). */
export function encodeRequestHead(
  method: string,
  path: string,
  headers: Headers,
  bodyLength: number,
): Uint8Array {
  return encodeHead(new Uint8Array(0), `${method} ${path}\n${headerLines(headers)}`, bodyLength);
}

/** An answer's bytes, whole. */
export function encodeAnswer(status: number, headers: Headers, body: Uint8Array): Uint8Array {
  const status16 = new Uint8Array(2);
  new DataView(status16.buffer).setUint16(0, status, true);
  const head = encodeHead(status16, headerLines(headers), body.length);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

/**
 * The next request, or null at a clean end between requests.
 * @throws StreamError on a malformed or oversized one.
 */
export async function readRequest(r: StreamReader): Promise<StreamMessage | null> {
  const first = await readExactly(r, 4, true);
  if (first === null) return null;
  const started = performance.now();
  const head = await readHead(r, u32(first));
  const nl = head.indexOf("\n");
  const body = await readBody(r, MAX_REQUEST_BODY);
  return {
    line: head.slice(0, nl),
    headers: parseHeaders(head.slice(nl + 1)),
    ...body,
    receiveMs: performance.now() - started,
  };
}

/** The answer to a request. @throws StreamError on a malformed or oversized one, or an end. */
export async function readAnswer(r: StreamReader): Promise<StreamMessage> {
  const prefix = (await readExactly(r, 6))!;
  const status = new DataView(prefix.buffer).getUint16(0, true);
  const head = await readHead(r, u32(prefix.subarray(2)));
  return {
    line: String(status),
    headers: parseHeaders(head),
    ...await readBody(r, MAX_ANSWER_BODY),
  };
}

function encodeHead(prefix: Uint8Array, text: string, bodyLength: number): Uint8Array {
  const head = utf8.encode(text);
  const out = new Uint8Array(prefix.length + 4 + head.length + 4);
  const view = new DataView(out.buffer);
  out.set(prefix, 0);
  view.setUint32(prefix.length, head.length, true);
  out.set(head, prefix.length + 4);
  view.setUint32(prefix.length + 4 + head.length, bodyLength, true);
  return out;
}

function headerLines(headers: Headers): string {
  let text = "";
  for (const [name, value] of headers) text += `${name}: ${value}\n`;
  return text;
}

async function readHead(r: StreamReader, length: number): Promise<string> {
  if (length > MAX_HEAD_BYTES) {
    throw new StreamError(`a message head of ${length} bytes (at most ${MAX_HEAD_BYTES})`);
  }
  try {
    return fromUtf8.decode((await readExactly(r, length))!);
  } catch (e) {
    if (e instanceof StreamError) throw e;
    throw new StreamError("a message head is not UTF-8");
  }
}

async function readBody(r: StreamReader, max: number): Promise<{ body: Uint8Array }> {
  const length = u32((await readExactly(r, 4))!);
  if (length > max) throw new StreamError(`a message body of ${length} bytes (at most ${max})`);
  return { body: (await readExactly(r, length))! };
}

function parseHeaders(text: string): Headers {
  const headers = new Headers();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const colon = line.indexOf(": ");
    if (colon <= 0) {
      throw new StreamError(`a malformed header line ${JSON.stringify(line.slice(0, 80))}`);
    }
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 2));
    } catch {
      throw new StreamError(`an invalid header ${JSON.stringify(line.slice(0, 80))}`);
    }
  }
  return headers;
}

function u32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
}

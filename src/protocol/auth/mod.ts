/**
 * Tokens: made, kept in the data directory, compared in constant time; and
 * which listen addresses are loopback (the object API needs a client token on
 * any other). (The HTTP middleware that checks them is `src/http/auth.ts`.)
 *
 * @module
 */

/**
 * Constant-time equality of two strings (time depends on length only).
 *
 * @example
 * ```ts
 * tokensEqual("abc", "abc"); // true
 * ```
 */
export function tokensEqual(a: string, b: string): boolean {
  // UTF-16 code units, not UTF-8: TextEncoder maps every lone surrogate to U+FFFD.
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    diff |= (a.charCodeAt(i % (a.length || 1)) | 0) ^ (b.charCodeAt(i % (b.length || 1)) | 0);
  }
  return diff === 0;
}

/** The request header that carries the token. */
export function authHeader(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

/**
 * A fresh random token (32 hex digits).
 *
 * @example
 * ```ts
 * const token = newToken();
 * ```
 */
export function newToken(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toHex();
}

/**
 * The pair token kept in `dir/pair-token`: read when present, else a new one
 * written there (owner-only), so a restarted appliance keeps the token its
 * peer and its admins were given (a standalone source keeps one too: it guards
 * its admin calls). `onGenerated` is called (with the file's path) only when
 * the token is new, so it is shown once, not on every start.
 *
 * @example
 * ```ts
 * const token = await storedToken("data/dest", (path) => console.error(`new token in ${path}`));
 * ```
 */
export async function storedToken(
  dir: string,
  onGenerated?: (path: string) => void,
): Promise<string> {
  const path = `${dir}/pair-token`;
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token !== "") return token;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dir, { recursive: true });
  const token = newToken();
  await Deno.writeTextFile(path, `${token}\n`, { mode: 0o600 });
  onGenerated?.(path);
  return token;
}

/**
 * True when `host` (a `--host` value) only accepts connections from this
 * machine: `localhost`, `127.0.0.0/8`, `::1` (bracketed or not), or an
 * IPv4-mapped loopback address. Anything else — `0.0.0.0`, `::`, a LAN
 * address, a name — may be reachable by others.
 *
 * @example
 * ```ts
 * isLoopbackHost("127.0.0.1"); // true
 * isLoopbackHost("0.0.0.0"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.replace(/^::ffff:/, "");
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v4);
  return m !== null && m[1] === "127" && m.slice(2).every((o) => Number(o) <= 255);
}

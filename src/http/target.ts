/**
 * The request target as the client sent it. Deno's server puts the target
 * verbatim into `request.url`, but `new URL()` resolves dot segments (`..`,
 * `.`, `%2E%2E`) and Hono's `c.req.query` keeps a value it cannot decode:
 * object keys and list parameters are read from the raw text here instead,
 * percent-decoded exactly once.
 *
 * @module
 */
import { RefsyncError } from "../errors/mod.ts";

/**
 * The path of a request URL as sent: nothing decoded, no dot segment
 * resolved. It starts where Hono's router starts (the first `/` after the
 * authority), so the key is always read from the path the route matched.
 *
 * @example
 * ```ts
 * rawPath("http://h/v1/objects/a/../b?x=1"); // "/v1/objects/a/../b"
 * ```
 */
export function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf(":") + 4);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

/**
 * The first value of the query parameter `name`, percent-decoded once (`+` is
 * a space, as in a form), or undefined when absent. A value that is not
 * valid percent-encoded UTF-8 is a 400, never silently kept or altered.
 *
 * @example
 * ```ts
 * queryParam("http://h/v1/objects?prefix=a%2Fb&limit=5", "prefix"); // "a/b"
 * queryParam("http://h/v1/objects?prefix=%FF", "prefix"); // throws bad_request
 * ```
 */
export function queryParam(url: string, name: string): string | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  const hash = url.indexOf("#", q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    if (decodeOnce(rawName, "a query parameter name") !== name) continue;
    return decodeOnce(eq < 0 ? "" : pair.slice(eq + 1), `query parameter '${name}'`);
  }
  return undefined;
}

/** Percent-decodes `text` once (`+` as a space): `a+b%2B%2E%2E` is `a b+..`. */
function decodeOnce(text: string, what: string): string {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    throw new RefsyncError(
      "bad_request",
      `${what} is not valid percent-encoded UTF-8: '${text.slice(0, 100)}'`,
    );
  }
}

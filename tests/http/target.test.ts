/**
 * Keys and query parameters come from the request target as sent: dot
 * segments are never resolved, everything is percent-decoded exactly once,
 * and what is not UTF-8 is a 400.
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../src/errors/mod.ts";
import { objectKey } from "../../src/http/objects.ts";
import { queryParam, rawPath } from "../../src/http/target.ts";

Deno.test("request target: the raw path keeps dot segments and escapes", () => {
  assert.equal(rawPath("http://h/v1/objects/a/../b"), "/v1/objects/a/../b");
  assert.equal(rawPath("http://h:80/v1/objects/./q?x=1#f"), "/v1/objects/./q");
  assert.equal(rawPath("http://h/v1/objects/%2E%2E/x?"), "/v1/objects/%2E%2E/x");
  assert.equal(rawPath("http://h"), "/");
});

Deno.test("request target: the key is the rest of the path, decoded once, dots literal", () => {
  assert.equal(objectKey("http://h/v1/objects/x/../y"), "x/../y");
  assert.equal(objectKey("http://h/v1/objects/./q"), "./q");
  assert.equal(objectKey("http://h/v1/objects/%2E%2E/x"), "../x");
  assert.equal(objectKey("http://h/v1/objects/../../../x"), "../../../x");
  assert.equal(objectKey("http://h/v1/objects/a%2Fb"), "a/b");
  assert.equal(objectKey("http://h/v1/objects/%2541"), "%41", "decoded once, not twice");
  assert.equal(objectKey("http://h/v1/objects/a+b"), "a+b", "a path has no form encoding");
  assert.equal(objectKey("http://h/v1/objects/"), "");
  assert.throws(() => objectKey("http://h/v1/objects/%FF"), (e) => isError(e, "bad_key"));
  assert.throws(() => objectKey("http://h/v1/%6Fbjects/a"), (e) => isError(e, "bad_key"));
});

Deno.test("request target: query parameters decoded once; not UTF-8 is bad_request", () => {
  const url = "http://h/v1/objects?prefix=a%2Fb+c&limit=5&start-after=&x";
  assert.equal(queryParam(url, "prefix"), "a/b c");
  assert.equal(queryParam(url, "limit"), "5");
  assert.equal(queryParam(url, "start-after"), "");
  assert.equal(queryParam(url, "x"), "");
  assert.equal(queryParam(url, "nope"), undefined);
  assert.equal(queryParam("http://h/v1/objects", "prefix"), undefined);
  assert.equal(queryParam("http://h/v1/objects?prefix=%252E", "prefix"), "%2E");
  for (const bad of ["%FF", "%C3%28", "%zz", "50%", "%ED%A0%80"]) {
    assert.throws(
      () => queryParam(`http://h/v1/objects?prefix=${bad}`, "prefix"),
      (e) => isError(e, "bad_request"),
      bad,
    );
  }
});

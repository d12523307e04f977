/**
 * Conditional requests (RFC 9110 §13): parsing of entity-tag lists and
 * HTTP-dates, and the evaluation order of §13.2.2 for reads (304/412) and
 * writes (412).
 *
 * @module
 */
import assert from "node:assert/strict";
import { isError } from "../../src/errors/mod.ts";
import {
  checkConditions,
  parseConditions,
  parseHttpDate,
  rangeAllowed,
} from "../../src/http/conditional.ts";

const ETAG = "ab12";
/** The object: its Last-Modified is 08:49:37 (the mtime has milliseconds). */
const MTIME = Date.UTC(1994, 10, 6, 8, 49, 37, 250);
const OBJ = { etag: ETAG, mtime: MTIME };
const AT = "Sun, 06 Nov 1994 08:49:37 GMT";
const BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT";
const AFTER = "Sun, 06 Nov 1994 08:49:38 GMT";

function check(headers: Record<string, string>, current: typeof OBJ | null, read: boolean) {
  try {
    return checkConditions(parseConditions(new Headers(headers)), current, read);
  } catch (e) {
    if (isError(e, "precondition_failed")) return "412";
    throw e;
  }
}

Deno.test("conditional: If-Match is a strong comparison; * needs the object", () => {
  for (const read of [true, false]) {
    assert.equal(check({ "If-Match": `"${ETAG}"` }, OBJ, read), "proceed");
    assert.equal(check({ "If-Match": `"x", "${ETAG}"` }, OBJ, read), "proceed");
    assert.equal(check({ "If-Match": `"x",,  "${ETAG}" ,` }, OBJ, read), "proceed");
    assert.equal(check({ "If-Match": "*" }, OBJ, read), "proceed");
    assert.equal(check({ "If-Match": `"x"` }, OBJ, read), "412");
    assert.equal(check({ "If-Match": `W/"${ETAG}"` }, OBJ, read), "412", "weak never matches");
    assert.equal(check({ "If-Match": "*" }, null, read), "412");
    assert.equal(check({ "If-Match": `"${ETAG}"` }, null, read), "412");
  }
});

Deno.test("conditional: If-None-Match is weak; a match is 304 on reads, 412 on writes", () => {
  assert.equal(check({ "If-None-Match": `"${ETAG}"` }, OBJ, true), "not_modified");
  assert.equal(check({ "If-None-Match": `W/"${ETAG}"` }, OBJ, true), "not_modified");
  assert.equal(check({ "If-None-Match": `"x", W/"${ETAG}"` }, OBJ, true), "not_modified");
  assert.equal(check({ "If-None-Match": "*" }, OBJ, true), "not_modified");
  assert.equal(check({ "If-None-Match": `"x"` }, OBJ, true), "proceed");
  assert.equal(check({ "If-None-Match": `"${ETAG}"` }, OBJ, false), "412");
  assert.equal(check({ "If-None-Match": `W/"${ETAG}"` }, OBJ, false), "412");
  // `*` on a write means create-only.
  assert.equal(check({ "If-None-Match": "*" }, OBJ, false), "412");
  assert.equal(check({ "If-None-Match": "*" }, null, false), "proceed");
  assert.equal(check({ "If-None-Match": `"${ETAG}"` }, null, false), "proceed");
});

Deno.test("conditional: dates compare at one-second precision; invalid dates are ignored", () => {
  assert.equal(check({ "If-Modified-Since": AT }, OBJ, true), "not_modified");
  assert.equal(check({ "If-Modified-Since": AFTER }, OBJ, true), "not_modified");
  assert.equal(check({ "If-Modified-Since": BEFORE }, OBJ, true), "proceed");
  assert.equal(check({ "If-Modified-Since": AT }, OBJ, false), "proceed", "GET/HEAD only");
  assert.equal(check({ "If-Modified-Since": "yesterday" }, OBJ, true), "proceed");
  for (const read of [true, false]) {
    assert.equal(check({ "If-Unmodified-Since": AT }, OBJ, read), "proceed");
    assert.equal(check({ "If-Unmodified-Since": AFTER }, OBJ, read), "proceed");
    assert.equal(check({ "If-Unmodified-Since": BEFORE }, OBJ, read), "412");
    assert.equal(check({ "If-Unmodified-Since": "garbage" }, OBJ, read), "proceed");
    assert.equal(check({ "If-Unmodified-Since": BEFORE }, null, read), "proceed", "no date");
  }
});

Deno.test("conditional: the RFC 9110 order — tags win over dates, If-Match before If-None-Match", () => {
  // If-Match present: If-Unmodified-Since is not evaluated.
  assert.equal(
    check({ "If-Match": `"${ETAG}"`, "If-Unmodified-Since": BEFORE }, OBJ, false),
    "proceed",
  );
  // If-None-Match present: If-Modified-Since is not evaluated.
  assert.equal(check({ "If-None-Match": `"x"`, "If-Modified-Since": AT }, OBJ, true), "proceed");
  // A failed If-Match is 412 even where If-None-Match would give 304.
  assert.equal(check({ "If-Match": `"x"`, "If-None-Match": `"${ETAG}"` }, OBJ, true), "412");
  assert.equal(check({ "If-Unmodified-Since": BEFORE, "If-Modified-Since": AT }, OBJ, true), "412");
  assert.equal(check({}, OBJ, true), "proceed");
  assert.equal(check({}, null, false), "proceed");
});

Deno.test("conditional: a malformed entity-tag list is a 400, not ignored", () => {
  for (const h of ["abc", `"a" "b"`, `W/abc`, `"unterminated`, ",", `w/"a"`]) {
    assert.throws(
      () => parseConditions(new Headers({ "If-Match": h })),
      (e) => isError(e, "bad_request"),
      h,
    );
    assert.throws(
      () => parseConditions(new Headers({ "If-None-Match": h })),
      (e) => isError(e, "bad_request"),
      h,
    );
  }
});

Deno.test("conditional: HTTP-dates in the three forms, invalid ones null", () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37);
  assert.equal(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  assert.equal(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  assert.equal(parseHttpDate("Sun Nov  6 08:49:37 1994"), t);
  assert.equal(parseHttpDate(new Date(t).toUTCString()), t, "what Last-Modified sends");
  for (
    const bad of [
      "",
      "1994-11-06T08:49:37Z",
      "Sun, 31 Feb 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 25:49:37 GMT",
      "Sun, 06 Nov 1994 08:61:37 GMT",
      "Sun, 06 Foo 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 PST",
    ]
  ) {
    assert.equal(parseHttpDate(bad), null, bad);
  }
  assert.equal(parseHttpDate(null), null);
});

Deno.test("conditional: If-Range honours a Range only for the strong ETag", () => {
  assert.equal(rangeAllowed(null, OBJ), true);
  assert.equal(rangeAllowed(`"${ETAG}"`, OBJ), true);
  assert.equal(rangeAllowed(`"x"`, OBJ), false);
  assert.equal(rangeAllowed(`W/"${ETAG}"`, OBJ), false);
  assert.equal(rangeAllowed(AT, OBJ), false, "a date is not a strong validator here");
});

/**
 * Conditional requests (RFC 9110 §13): `If-Match`, `If-None-Match`,
 * `If-Modified-Since`, `If-Unmodified-Since` and `If-Range`, evaluated
 * against an object's validators (its strong ETag and its mtime). For writes
 * the evaluation is handed to the store as a precondition and run at the
 * moment the write or delete is applied, so a refused request changes
 * nothing and two racing `If-None-Match: *` PUTs cannot both win.
 *
 * @module
 */
import { RefsyncError } from "../errors/mod.ts";

/** What a precondition is checked against: an object's strong ETag (hex) and mtime (ms). */
export interface Validators {
  etag: string;
  mtime: number;
}

/** An entity-tag of a list: `"x"` or `W/"x"`. */
interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** `*`, or a list of entity-tags. */
type TagCondition = "*" | EntityTag[];

/** The preconditions of a request; null fields are absent (or, for dates, invalid: ignored). */
export interface Conditions {
  ifMatch: TagCondition | null;
  ifNoneMatch: TagCondition | null;
  ifModifiedSince: number | null;
  ifUnmodifiedSince: number | null;
}

/**
 * Reads the preconditions of `headers`. A malformed entity-tag list is a 400
 * (ignoring it could let a guarded write through); an invalid date is
 * ignored, as RFC 9110 requires.
 *
 * @example
 * ```ts
 * const c = parseConditions(new Headers({ "If-None-Match": "*" }));
 * c.ifNoneMatch; // "*"
 * ```
 */
export function parseConditions(headers: Headers): Conditions {
  return {
    ifMatch: parseTags(headers.get("If-Match"), "If-Match"),
    ifNoneMatch: parseTags(headers.get("If-None-Match"), "If-None-Match"),
    ifModifiedSince: parseHttpDate(headers.get("If-Modified-Since")),
    ifUnmodifiedSince: parseHttpDate(headers.get("If-Unmodified-Since")),
  };
}

/**
 * Evaluates `conditions` against the object as it is (`null`: absent), in
 * the order of RFC 9110 §13.2.2. `read` is true for GET and HEAD. Returns
 * "proceed", or "not_modified" (a GET/HEAD answers 304); a failed
 * precondition throws `precondition_failed` (412).
 *
 * @example
 * ```ts
 * const c = parseConditions(new Headers({ "If-None-Match": '"ab"' }));
 * checkConditions(c, { etag: "ab", mtime: 0 }, true); // "not_modified"
 * ```
 */
export function checkConditions(
  conditions: Conditions,
  current: Validators | null,
  read: boolean,
): "proceed" | "not_modified" {
  const { ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince } = conditions;
  if (ifMatch !== null) {
    if (!matches(ifMatch, current, true)) {
      throw failed(current === null ? "If-Match: the object does not exist" : "If-Match");
    }
  } else if (ifUnmodifiedSince !== null && current !== null) {
    if (lastModified(current) > ifUnmodifiedSince) {
      throw failed("If-Unmodified-Since: the object was modified since");
    }
  }
  if (ifNoneMatch !== null) {
    if (matches(ifNoneMatch, current, false)) {
      if (read) return "not_modified";
      throw failed(
        ifNoneMatch === "*" ? "If-None-Match: *: the object exists" : "If-None-Match",
      );
    }
  } else if (read && ifModifiedSince !== null && current !== null) {
    if (lastModified(current) <= ifModifiedSince) return "not_modified";
  }
  return "proceed";
}

/**
 * True when a `Range` may be honoured under `If-Range` (absent, or the
 * object's strong ETag). A date never matches: an mtime of one-second
 * precision is not a strong validator, and serving the whole object is
 * always correct.
 *
 * @example
 * ```ts
 * rangeAllowed('"ab"', { etag: "ab", mtime: 0 }); // true
 * rangeAllowed('W/"ab"', { etag: "ab", mtime: 0 }); // false
 * ```
 */
export function rangeAllowed(ifRange: string | null | undefined, current: Validators): boolean {
  if (ifRange === null || ifRange === undefined) return true;
  const tag = parseTag(ifRange.trim());
  return tag !== null && !tag.weak && tag.opaque === current.etag;
}

/** The quoted strong ETag header of an object's hex ETag. */
export function etagHeader(etag: string): string {
  return `"${etag}"`;
}

function failed(what: string): RefsyncError {
  return new RefsyncError("precondition_failed", `precondition failed: ${what}`);
}

/** Last-Modified as sent (whole seconds): what a client's date was taken from. */
function lastModified(v: Validators): number {
  return Math.floor(v.mtime / 1000) * 1000;
}

/** `*` matches any existing object; a list matches by strong or weak comparison. */
function matches(cond: TagCondition, current: Validators | null, strong: boolean): boolean {
  if (current === null) return false;
  if (cond === "*") return true;
  return cond.some((t) => (!strong || !t.weak) && t.opaque === current.etag);
}

function parseTags(header: string | null, name: string): TagCondition | null {
  if (header === null) return null;
  const text = header.trim();
  if (text === "*") return "*";
  const tags: EntityTag[] = [];
  // 1#entity-tag: elements separated by commas with optional whitespace; empty ones allowed.
  for (const part of text.split(",")) {
    const element = part.trim();
    if (element === "") continue;
    const tag = parseTag(element);
    if (tag === null) {
      throw new RefsyncError(
        "bad_request",
        `malformed ${name} '${header.slice(0, 100)}'; use "*" or quoted ETags, e.g. "abc", W/"abc"`,
      );
    }
    tags.push(tag);
  }
  if (tags.length === 0) {
    throw new RefsyncError("bad_request", `${name} is empty; use "*" or quoted ETags`);
  }
  return tags;
}

function parseTag(text: string): EntityTag | null {
  const m = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/.exec(text);
  return m ? { weak: m[1] !== undefined, opaque: m[2] } : null;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) in
 * ms, or null when absent or invalid.
 *
 * @example
 * ```ts
 * parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"); // 784111777000
 * ```
 */
export function parseHttpDate(text: string | null): number | null {
  if (text === null) return null;
  const t = text.trim();
  let m = /^[A-Z][a-z]{2}, (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(t);
  if (m) return utc(Number(m[3]), m[2], m[1], m[4], m[5], m[6]);
  m = /^[A-Z][a-z]+, (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(t);
  if (m) {
    // Two-digit years: RFC 9110 reads a year more than 50 years ahead as the past century.
    const yy = Number(m[3]);
    const nowYear = new Date().getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    return utc(year, m[2], m[1], m[4], m[5], m[6]);
  }
  m = /^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(t);
  if (m) return utc(Number(m[6]), m[1], m[2].trim(), m[3], m[4], m[5]);
  return null;
}

function utc(
  year: number,
  month: string,
  day: string,
  h: string,
  min: string,
  s: string,
): number | null {
  const mon = MONTHS.indexOf(month);
  if (mon < 0) return null;
  const ms = Date.UTC(year, mon, Number(day), Number(h), Number(min), Number(s));
  const d = new Date(ms);
  // Reject dates Date.UTC rolled over (Feb 30, 25:00): they are not valid HTTP-dates.
  if (d.getUTCDate() !== Number(day) || d.getUTCHours() !== Number(h)) return null;
  if (Number(min) > 59 || Number(s) > 60) return null;
  return ms;
}

/**
 * The little XML S3 speaks: documents written from strings (escaped here), and
 * a small parser for the request bodies S3 clients send (multipart completion,
 * batch delete, bucket configuration). The parser keeps elements and text,
 * skips the prolog, comments and attributes, and bounds depth and size.
 *
 * @module
 */
import { S3Error } from "./errors.ts";

/** S3's XML namespace. */
export const S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/";

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

/**
 * Escapes text for an element or attribute.
 *
 * @example
 * ```ts
 * escapeXml("a<b&c"); // "a&lt;b&amp;c"
 * ```
 */
export function escapeXml(s: string): string {
  // Characters XML 1.0 cannot carry at all become U+FFFD rather than a broken document.
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c])
    // deno-lint-ignore no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "\ufffd");
}

/**
 * `<name>value</name>` with `value` escaped.
 *
 * @example
 * ```ts
 * textElement("Key", "a&b"); // "<Key>a&amp;b</Key>"
 * ```
 */
export function textElement(name: string, value: string | number | boolean): string {
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/**
 * `<name>` around already-built `children` markup.
 *
 * @example
 * ```ts
 * element("Part", [textElement("PartNumber", 1)]); // "<Part><PartNumber>1</PartNumber></Part>"
 * ```
 */
export function element(name: string, children: string[]): string {
  return `<${name}>${children.join("")}</${name}>`;
}

/**
 * A whole document: the prolog and `root` holding `fields` (text elements) or
 * built `children`. Result documents carry S3's namespace; `Error` does not.
 *
 * @example
 * ```ts
 * xmlDocument("Error", { Code: "NoSuchKey", Message: "no such key" });
 * ```
 */
export function xmlDocument(root: string, content: Record<string, string> | string[]): string {
  const inner = Array.isArray(content)
    ? content.join("")
    : Object.entries(content).map(([k, v]) => textElement(k, v)).join("");
  const ns = root === "Error" ? "" : ` xmlns="${S3_XMLNS}"`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}${ns}>${inner}</${root}>`;
}

/** A parsed element: its name (without namespace prefix), children and text. */
export interface XmlNode {
  name: string;
  children: XmlNode[];
  /** Concatenated text directly inside the element. */
  text: string;
}

const MAX_DEPTH = 16;

/**
 * Parses `source` into its root element.
 *
 * @throws S3Error `MalformedXML` when it is not well-formed.
 * @example
 * ```ts
 * const root = parseXml("<Delete><Object><Key>a</Key></Object></Delete>");
 * root.children[0].children[0].text; // "a"
 * ```
 */
export function parseXml(source: string): XmlNode {
  let i = 0;
  const fail = (why: string): never => {
    throw new S3Error("MalformedXML", `The XML you provided was not well-formed: ${why}`);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < source.length && /\s/.test(source[i])) i++;
      if (source.startsWith("<?", i)) {
        const end = source.indexOf("?>", i);
        if (end < 0) fail("unterminated processing instruction");
        i = end + 2;
      } else if (source.startsWith("<!--", i)) {
        const end = source.indexOf("-->", i);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else return;
    }
  };
  const parseElement = (depth: number): XmlNode => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    if (source[i] !== "<") fail(`expected an element at offset ${i}`);
    const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/
      .exec(source.slice(i, i + 4096));
    if (!m) fail(`bad start tag at offset ${i}`);
    i += m![0].length;
    const node: XmlNode = { name: m![1].replace(/^.*:/, ""), children: [], text: "" };
    if (m![3] === "/") return node;
    for (;;) {
      if (i >= source.length) fail(`element <${m![1]}> is not closed`);
      if (source.startsWith("</", i)) {
        const close = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(source.slice(i, i + 1100));
        if (!close || close[1] !== m![1]) fail(`mismatched end tag at offset ${i}`);
        i += close![0].length;
        return node;
      }
      if (source.startsWith("<!--", i)) {
        const end = source.indexOf("-->", i);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (source.startsWith("<![CDATA[", i)) {
        const end = source.indexOf("]]>", i);
        if (end < 0) fail("unterminated CDATA");
        node.text += source.slice(i + 9, end);
        i = end + 3;
      } else if (source[i] === "<") {
        node.children.push(parseElement(depth + 1));
      } else {
        const end = source.indexOf("<", i);
        node.text += decodeEntities(source.slice(i, end < 0 ? source.length : end), fail);
        i = end < 0 ? source.length : end;
      }
    }
  };
  skipMisc();
  const root = parseElement(0);
  skipMisc();
  if (i !== source.length) fail("content after the root element");
  return root;
}

function decodeEntities(s: string, fail: (why: string) => never): string {
  return s.replace(/&([^;]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(";")) fail(`bad entity '${whole}'`);
    const named: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    if (name in named) return named[name];
    const num = /^#(x[0-9a-fA-F]+|[0-9]+)$/.exec(name);
    if (!num) fail(`unknown entity '${whole}'`);
    const cp = num![1][0] === "x" ? parseInt(num![1].slice(1), 16) : parseInt(num![1], 10);
    if (!(cp > 0 && cp <= 0x10ffff)) fail(`bad character reference '${whole}'`);
    return String.fromCodePoint(cp);
  });
}

/**
 * The children of `node` named `name`.
 *
 * @example
 * ```ts
 * childrenNamed(parseXml("<a><b/><b/></a>"), "b").length; // 2
 * ```
 */
export function childrenNamed(node: XmlNode, name: string): XmlNode[] {
  return node.children.filter((c) => c.name === name);
}

/**
 * The text of the first child named `name`, or undefined.
 *
 * @example
 * ```ts
 * childText(parseXml("<a><b>x</b></a>"), "b"); // "x"
 * ```
 */
export function childText(node: XmlNode, name: string): string | undefined {
  return node.children.find((c) => c.name === name)?.text;
}

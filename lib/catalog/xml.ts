/**
 * A small, non-validating XML parser for the documents a backup carries (`qubes.xml`,
 * `firewall.xml`).
 *
 * It reads elements, attributes, text, comments, CDATA sections, processing instructions, the
 * five predefined entities and numeric character references. It refuses document type
 * declarations, so no entity can ever expand into anything but one character. The parser is a
 * single loop over the text (no recursion), bounded in input size and nesting depth.
 *
 * @module
 */

/** A parsed element: its name, attributes (entity-decoded) and children in document order. */
export interface XmlElement {
  /** The tag name as written, prefix included (`domain`, `QubesAppVm`). */
  readonly name: string;
  /** Attribute values, entity-decoded and with literal tabs and newlines turned into spaces. */
  readonly attributes: ReadonlyMap<string, string>;
  /** Child elements and text (comments and processing instructions are dropped). */
  readonly children: readonly XmlNode[];
}

/** A child of an element: an element, or a run of text (CDATA included). */
export type XmlNode = XmlElement | string;

/** Limits that keep a hostile document from using unbounded memory or time. */
export interface XmlLimits {
  /** Largest accepted input, in bytes for a `Uint8Array` and UTF-16 units for a string. */
  maxLength?: number;
  /** Deepest accepted element nesting (the root element is depth 1). */
  maxDepth?: number;
}

/** Default largest input: 16 MiB (the official client reads at most 1 MiB of `qubes.xml`). */
export const DEFAULT_MAX_XML_LENGTH = 16 * 1024 * 1024;
/** Default deepest nesting; Qubes documents nest at most 5 levels. */
export const DEFAULT_MAX_XML_DEPTH = 256;

/**
 * The document is not well-formed XML, uses a feature this parser refuses, or exceeds a limit.
 *
 * `detail` is the reason without the leading "Cannot parse XML: ", so that a caller knowing
 * the file name can say `Cannot read qubes.xml: <detail>`.
 */
export class XmlSyntaxError extends SyntaxError {
  /** What is wrong, with the position (`unclosed element "a" at line 3, column 5`). */
  readonly detail: string;
  constructor(detail: string) {
    super(`Cannot parse XML: ${detail}`);
    this.name = "XmlSyntaxError";
    this.detail = detail;
  }
}

interface OpenElement {
  name: string;
  attributes: Map<string, string>;
  children: XmlNode[];
  start: number;
}

const NAME = /[A-Za-z_:\u00C0-\uFFFF][-A-Za-z0-9_:.\u00B7\u00C0-\uFFFF]*/y;
const SPACE = /[ \t\r\n]*/y;
const XML_DECL = /^<\?xml[ \t\r\n]/;
// version, then optional encoding and standalone, in this order (XML 1.0 production 23);
// the version number is checked as loosely as expat does.
const XML_DECL_FULL =
  /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])[-\w.:]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])[A-Za-z][-\w.]*\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\3)?[ \t\r\n]*\?>/y;
const PI_TARGET_XML = /^xml$/i;
const CHARACTER_REFERENCE = /^#(?:([0-9]{1,7})|x([0-9A-Fa-f]{1,6}))$/;
// Control characters XML 1.0 forbids, the two non-characters, and unpaired surrogates.
const INVALID_CHARACTER =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ONLY_SPACE = /^[ \t\r\n]*$/;
const NEWLINES = /\r\n?/g;
const ATTRIBUTE_SPACE = /\r\n?|[\n\t]/g;
const ENCODING_IN_DECL =
  /^<\?xml[ \t\r\n][^?>]*?encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][-A-Za-z0-9._]*)\1/;

/**
 * Parses an XML document into its root element.
 *
 * Bytes are decoded by their byte-order mark, else by the `encoding` of the XML declaration,
 * else as UTF-8; undecodable bytes are an error.
 *
 * @param input The document, as text or bytes.
 * @param limits Size and depth bounds (defaults: 16 MiB, 256 levels).
 * @returns The root element.
 * @throws {XmlSyntaxError} when the document is malformed, declares a DOCTYPE, uses an unknown
 *   entity, or exceeds a limit.
 *
 * @example
 * ```ts
 * const root = parseXml('<a x="1">b &amp; c</a>');
 * root.attributes.get("x"); // "1"
 * textOf(root); // "b & c"
 * ```
 */
export function parseXml(input: string | Uint8Array, limits: XmlLimits = {}): XmlElement {
  const maxLength = limits.maxLength ?? DEFAULT_MAX_XML_LENGTH;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_XML_DEPTH;
  if (input.length > maxLength) {
    throw new XmlSyntaxError(
      `document is ${input.length} ${
        typeof input === "string" ? "characters" : "bytes"
      } long, more than the limit of ${maxLength}`,
    );
  }
  const text = typeof input === "string" ? input : decodeXmlBytes(input);
  return new Parser(text, maxDepth).parse();
}

/**
 * The child elements of `element`, optionally only those named `name`.
 *
 * @example
 * ```ts
 * childElements(parseXml("<a><b/>x<c/><b/></a>"), "b").length; // 2
 * ```
 */
export function childElements(element: XmlElement, name?: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of element.children) {
    if (typeof child !== "string" && (name === undefined || child.name === name)) out.push(child);
  }
  return out;
}

/**
 * The first child element of `element` named `name`, or `undefined`.
 *
 * @example
 * ```ts
 * firstChild(parseXml("<a><b/></a>"), "b")?.name; // "b"
 * ```
 */
export function firstChild(element: XmlElement, name: string): XmlElement | undefined {
  for (const child of element.children) {
    if (typeof child !== "string" && child.name === name) return child;
  }
  return undefined;
}

/**
 * The text directly inside `element` (its text children joined; child elements are skipped).
 *
 * @example
 * ```ts
 * textOf(parseXml("<p>a<![CDATA[<b>]]></p>")); // "a<b>"
 * ```
 */
export function textOf(element: XmlElement): string {
  let text = "";
  for (const child of element.children) if (typeof child === "string") text += child;
  return text;
}

function decodeXmlBytes(bytes: Uint8Array): string {
  let label = "utf-8";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) label = "utf-16be";
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) label = "utf-16le";
  else if (!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) {
    const head = new TextDecoder("latin1").decode(bytes.subarray(0, 256));
    label = ENCODING_IN_DECL.exec(head)?.[2] ?? "utf-8";
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw new XmlSyntaxError(`unsupported encoding "${label}"`);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new XmlSyntaxError(`bytes are not valid ${decoder.encoding}`);
  }
}

class Parser {
  readonly #text: string;
  readonly #maxDepth: number;
  #pos = 0;
  readonly #stack: OpenElement[] = [];
  #root: XmlElement | undefined;

  constructor(text: string, maxDepth: number) {
    this.#text = text;
    this.#maxDepth = maxDepth;
  }

  parse(): XmlElement {
    const text = this.#text;
    const bad = INVALID_CHARACTER.exec(text);
    if (bad) {
      const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
      this.#fail(`character U+${code} is not allowed`, bad.index);
    }
    if (text.charCodeAt(0) === 0xfeff) this.#pos = 1;
    if (XML_DECL.test(text.slice(this.#pos, this.#pos + 6))) {
      XML_DECL_FULL.lastIndex = this.#pos;
      if (!XML_DECL_FULL.test(text)) this.#fail("malformed XML declaration", this.#pos);
      this.#pos = XML_DECL_FULL.lastIndex;
    }
    while (this.#pos < text.length) {
      const lt = text.indexOf("<", this.#pos);
      const end = lt < 0 ? text.length : lt;
      if (end > this.#pos) this.#characterData(this.#pos, end);
      if (lt < 0) break;
      this.#pos = lt;
      const next = text[lt + 1];
      if (next === "/") this.#endTag();
      else if (next === "!") this.#markupDeclaration();
      else if (next === "?") this.#processingInstruction();
      else this.#startTag();
    }
    const open = this.#stack.at(-1);
    if (open) this.#fail(`element "${open.name}" is not closed`, open.start);
    if (!this.#root) this.#fail("no root element", text.length);
    return this.#root;
  }

  #characterData(start: number, end: number): void {
    const raw = this.#text.slice(start, end);
    const parent = this.#stack.at(-1);
    if (!parent) {
      if (!ONLY_SPACE.test(raw)) this.#fail("text outside the root element", start);
      return;
    }
    const bad = raw.indexOf("]]>");
    if (bad >= 0) this.#fail('"]]>" is not allowed in text', start + bad);
    this.#appendText(parent, this.#decode(raw.replace(NEWLINES, "\n"), start));
  }

  #appendText(parent: OpenElement, text: string): void {
    if (text === "") return;
    const last = parent.children.length - 1;
    const previous = parent.children[last];
    if (typeof previous === "string") parent.children[last] = previous + text;
    else parent.children.push(text);
  }

  #startTag(): void {
    const text = this.#text;
    const start = this.#pos;
    const name = this.#name(start + 1, "element name");
    const attributes = new Map<string, string>();
    let pos = start + 1 + name.length;
    let selfClosing = false;
    for (;;) {
      const spaced = this.#skipSpace(pos);
      const hadSpace = spaced > pos;
      pos = spaced;
      const c = text[pos];
      if (c === ">") {
        pos += 1;
        break;
      }
      if (c === "/" && text[pos + 1] === ">") {
        pos += 2;
        selfClosing = true;
        break;
      }
      if (c === undefined) this.#fail(`start tag "${name}" is not closed`, start);
      if (!hadSpace) this.#fail(`expected white space, ">" or "/>" in tag "${name}"`, pos);
      const attribute = this.#name(pos, "attribute name");
      pos = this.#skipSpace(pos + attribute.length);
      if (text[pos] !== "=") this.#fail(`expected "=" after attribute "${attribute}"`, pos);
      pos = this.#skipSpace(pos + 1);
      const quote = text[pos];
      if (quote !== '"' && quote !== "'") {
        this.#fail(`value of attribute "${attribute}" is not quoted`, pos);
      }
      const close = text.indexOf(quote, pos + 1);
      if (close < 0) this.#fail(`value of attribute "${attribute}" is not closed`, pos);
      const raw = text.slice(pos + 1, close);
      const lt = raw.indexOf("<");
      if (lt >= 0) this.#fail(`"<" in the value of attribute "${attribute}"`, pos + 1 + lt);
      if (attributes.has(attribute)) this.#fail(`duplicate attribute "${attribute}"`, pos);
      attributes.set(attribute, this.#decode(raw.replace(ATTRIBUTE_SPACE, " "), pos + 1));
      pos = close + 1;
    }
    this.#pos = pos;
    const parent = this.#stack.at(-1);
    if (!parent && this.#root) this.#fail(`second root element "${name}"`, start);
    const element: OpenElement = { name, attributes, children: [], start };
    if (parent) parent.children.push(element);
    if (selfClosing) {
      if (!parent) this.#root = element;
      return;
    }
    if (this.#stack.length >= this.#maxDepth) {
      this.#fail(`elements are nested more than ${this.#maxDepth} levels deep`, start);
    }
    this.#stack.push(element);
  }

  #endTag(): void {
    const start = this.#pos;
    const name = this.#name(start + 2, "element name");
    const pos = this.#skipSpace(start + 2 + name.length);
    if (this.#text[pos] !== ">") this.#fail(`end tag "${name}" is not closed`, start);
    const open = this.#stack.pop();
    if (!open) this.#fail(`end tag "${name}" without a start tag`, start);
    if (open.name !== name) {
      this.#fail(`end tag "${name}" does not match start tag "${open.name}"`, start);
    }
    if (this.#stack.length === 0) this.#root = open;
    this.#pos = pos + 1;
  }

  #markupDeclaration(): void {
    const text = this.#text;
    const start = this.#pos;
    if (text.startsWith("<!--", start)) {
      const end = this.#skipPastEnd(start + 4, "-->", "comment");
      if (text.slice(start + 4, end - 3).includes("--")) {
        this.#fail('"--" is not allowed inside a comment', start);
      }
    } else if (text.startsWith("<![CDATA[", start)) {
      const parent = this.#stack.at(-1);
      if (!parent) this.#fail("CDATA section outside the root element", start);
      const end = this.#skipPastEnd(start + 9, "]]>", "CDATA section");
      this.#appendText(parent, text.slice(start + 9, end - 3).replace(NEWLINES, "\n"));
    } else if (text.startsWith("<!DOCTYPE", start)) {
      this.#fail("document type declarations (DOCTYPE) are not allowed", start);
    } else {
      this.#fail('unknown markup after "<!"', start);
    }
  }

  #processingInstruction(): void {
    const start = this.#pos;
    const target = this.#name(start + 2, "processing instruction target");
    if (PI_TARGET_XML.test(target)) {
      this.#fail("XML declaration is only allowed at the start of the document", start);
    }
    const after = start + 2 + target.length;
    if (!this.#text.startsWith("?>", after) && this.#skipSpace(after) === after) {
      this.#fail(`expected white space after processing instruction target "${target}"`, after);
    }
    this.#skipPastEnd(after, "?>", "processing instruction");
  }

  /** Moves past the first `terminator` at or after `from`, returning the new position. */
  #skipPastEnd(from: number, terminator: string, what: string): number {
    const end = this.#text.indexOf(terminator, from);
    if (end < 0) this.#fail(`${what} is not closed`, this.#pos);
    this.#pos = end + terminator.length;
    return this.#pos;
  }

  #name(at: number, what: string): string {
    NAME.lastIndex = at;
    const match = NAME.exec(this.#text);
    if (!match) this.#fail(`expected ${what}`, at);
    return match[0];
  }

  #skipSpace(at: number): number {
    SPACE.lastIndex = at;
    SPACE.exec(this.#text);
    return SPACE.lastIndex;
  }

  /** Replaces entity and character references in `raw`, which starts at `offset`. */
  #decode(raw: string, offset: number): string {
    let amp = raw.indexOf("&");
    if (amp < 0) return raw;
    let out = "";
    let from = 0;
    while (amp >= 0) {
      const semi = raw.indexOf(";", amp + 1);
      if (semi < 0 || semi - amp > 10) this.#fail('"&" does not start a reference', offset + amp);
      const name = raw.slice(amp + 1, semi);
      out += raw.slice(from, amp) + this.#reference(name, offset + amp);
      from = semi + 1;
      amp = raw.indexOf("&", from);
    }
    return out + raw.slice(from);
  }

  #reference(name: string, at: number): string {
    switch (name) {
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "amp":
        return "&";
      case "apos":
        return "'";
      case "quot":
        return '"';
    }
    const match = CHARACTER_REFERENCE.exec(name);
    if (!match) this.#fail(`unknown entity "&${name};"`, at);
    const code = match[1] !== undefined ? parseInt(match[1], 10) : parseInt(match[2] ?? "", 16);
    const allowed = code === 0x9 || code === 0xa || code === 0xd ||
      (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) ||
      (code >= 0x10000 && code <= 0x10ffff);
    if (!allowed) this.#fail(`character reference "&${name};" is not an allowed character`, at);
    return String.fromCodePoint(code);
  }

  #fail(detail: string, at: number): never {
    let line = 1;
    let lineStart = 0;
    for (
      let nl = this.#text.indexOf("\n");
      nl >= 0 && nl < at;
      nl = this.#text.indexOf("\n", nl + 1)
    ) {
      line += 1;
      lineStart = nl + 1;
    }
    throw new XmlSyntaxError(`${detail} at line ${line}, column ${at - lineStart + 1}`);
  }
}

import assert from "node:assert/strict";
import {
  childElements,
  firstChild,
  parseXml,
  textOf,
  XmlSyntaxError,
} from "../../lib/catalog/xml.ts";
import type { XmlElement } from "../../lib/catalog/xml.ts";
import { R2_XML, R32_XML, R43_XML, R4_XML } from "./_samples.ts";

function syntaxError(detail: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof XmlSyntaxError, String(error));
    assert.ok(error instanceof SyntaxError);
    assert.equal(error.detail, detail);
    assert.equal(error.message, `Cannot parse XML: ${detail}`);
    return true;
  };
}

Deno.test("parseXml() reads elements, attributes, text, CDATA, comments and instructions", () => {
  const root = parseXml(
    `<?xml version="1.0"?>\n<!-- head --><?pi data?>\n<a x='1' y = "t&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#x1F600;">` +
      `one<b/>two<!-- c --><![CDATA[<raw & ]]]]><?x y?>three<c k="v">in</c></a>\n<!-- tail -->\n`,
  );
  assert.equal(root.name, "a");
  assert.deepEqual([...root.attributes], [["x", "1"], ["y", `t<>&'"AB\u{1F600}`]]);
  assert.deepEqual(root.children.map((c) => typeof c === "string" ? c : `<${c.name}>`), [
    "one",
    "<b>",
    "two<raw & ]]three",
    "<c>",
  ]);
  assert.equal(textOf(root), "onetwo<raw & ]]three");
  assert.equal(childElements(root).length, 2);
  assert.equal(textOf(firstChild(root, "c") as XmlElement), "in");
  assert.equal(firstChild(root, "zzz"), undefined);
});

Deno.test("parseXml() normalises line ends in text and white space in attribute values", () => {
  const root = parseXml(`<a v="x\r\ny\tz&#10;w">1\r\n2\r3&#13;</a>`);
  assert.equal(root.attributes.get("v"), "x y z\nw");
  assert.equal(textOf(root), "1\n2\n3\r");
});

Deno.test("parseXml() decodes bytes by BOM and XML declaration", () => {
  const utf8 = new TextEncoder().encode(`\uFEFF<a>é</a>`);
  assert.equal(textOf(parseXml(utf8)), "é");
  const latin1 = Uint8Array.from([
    ...new TextEncoder().encode(`<?xml version="1.0" encoding="ISO-8859-1"?><a>`),
    0xe9,
    ...new TextEncoder().encode(`</a>`),
  ]);
  assert.equal(textOf(parseXml(latin1)), "é");
  const utf16 = new Uint8Array([0xff, 0xfe, 0x3c, 0, 0x61, 0, 0x2f, 0, 0x3e, 0]);
  assert.equal(parseXml(utf16).name, "a");
  assert.throws(
    () => parseXml(Uint8Array.from([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])),
    syntaxError("bytes are not valid utf-8"),
  );
  assert.throws(
    () => parseXml(new TextEncoder().encode(`<?xml version="1.0" encoding="x-klingon"?><a/>`)),
    syntaxError('unsupported encoding "x-klingon"'),
  );
});

Deno.test("parseXml() rejects DOCTYPE, so no entity can expand", () => {
  const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>`;
  assert.throws(
    () => parseXml(billionLaughs),
    syntaxError("document type declarations (DOCTYPE) are not allowed at line 2, column 1"),
  );
  assert.throws(
    () => parseXml(`<!DOCTYPE a SYSTEM "file:///etc/passwd"><a>&xxe;</a>`),
    syntaxError("document type declarations (DOCTYPE) are not allowed at line 1, column 1"),
  );
});

Deno.test("parseXml() rejects malformed documents with the position", () => {
  const cases: [string, string][] = [
    ["", "no root element at line 1, column 1"],
    ["  \n ", "no root element at line 2, column 2"],
    ["<a>&nbsp;</a>", 'unknown entity "&nbsp;" at line 1, column 4'],
    ["<a>&#0;</a>", 'character reference "&#0;" is not an allowed character at line 1, column 4'],
    [
      "<a>&#xD800;</a>",
      'character reference "&#xD800;" is not an allowed character at line 1, column 4',
    ],
    ["<a>AT&T</a>", '"&" does not start a reference at line 1, column 6'],
    ["<a>\n  <b>\n</a>", 'end tag "a" does not match start tag "b" at line 3, column 1'],
    ["<a><b></b>", 'element "a" is not closed at line 1, column 1'],
    ["<a", 'start tag "a" is not closed at line 1, column 1'],
    ["<a></a", 'end tag "a" is not closed at line 1, column 4'],
    ["</a>", 'end tag "a" without a start tag at line 1, column 1'],
    ["<a/><b/>", 'second root element "b" at line 1, column 5'],
    ["<a/>x", "text outside the root element at line 1, column 5"],
    ["x<a/>", "text outside the root element at line 1, column 1"],
    ['<a x="1" x="2"/>', 'duplicate attribute "x" at line 1, column 12'],
    ['<a x="1"y="2"/>', 'expected white space, ">" or "/>" in tag "a" at line 1, column 9'],
    ["<a x=1/>", 'value of attribute "x" is not quoted at line 1, column 6'],
    ['<a x="1/>', 'value of attribute "x" is not closed at line 1, column 6'],
    ['<a x="<"/>', '"<" in the value of attribute "x" at line 1, column 7'],
    ["<a x/>", 'expected "=" after attribute "x" at line 1, column 5'],
    ["<1a/>", "expected element name at line 1, column 2"],
    ["<a>]]></a>", '"]]>" is not allowed in text at line 1, column 4'],
    ["<a><!-- a -- b --></a>", '"--" is not allowed inside a comment at line 1, column 4'],
    ["<a><!-- x</a>", "comment is not closed at line 1, column 4"],
    ["<a><!--></a>", "comment is not closed at line 1, column 4"],
    ["<a><![CDATA[x</a>", "CDATA section is not closed at line 1, column 4"],
    ["<![CDATA[x]]><a/>", "CDATA section outside the root element at line 1, column 1"],
    ["<a><!ELEMENT a ANY></a>", 'unknown markup after "<!" at line 1, column 4'],
    ["<a><?x y</a>", "processing instruction is not closed at line 1, column 4"],
    [
      '<a><?x"y?></a>',
      'expected white space after processing instruction target "x" at line 1, column 7',
    ],
    [
      '<?xml version="1.0" encoding="UTF-8" standalone="maybe"?><a/>',
      "malformed XML declaration at line 1, column 1",
    ],
    [
      ' <?xml version="1.0"?><a/>',
      "XML declaration is only allowed at the start of the document at line 1, column 2",
    ],
    ["<a>\u0001</a>", "character U+0001 is not allowed at line 1, column 4"],
    ["<a>\uD800</a>", "character U+D800 is not allowed at line 1, column 4"],
  ];
  for (const [doc, detail] of cases) assert.throws(() => parseXml(doc), syntaxError(detail), doc);
});

Deno.test("parseXml() enforces the size and depth limits", () => {
  assert.throws(
    () => parseXml("<a/>".padEnd(100), { maxLength: 99 }),
    syntaxError("document is 100 characters long, more than the limit of 99"),
  );
  assert.throws(
    () => parseXml(new Uint8Array(100), { maxLength: 99 }),
    syntaxError("document is 100 bytes long, more than the limit of 99"),
  );
  const nested = (depth: number) => "<a>".repeat(depth) + "</a>".repeat(depth);
  assert.equal(parseXml(nested(256)).name, "a");
  assert.throws(
    () => parseXml(nested(257)),
    syntaxError("elements are nested more than 256 levels deep at line 1, column 769"),
  );
  // Depth is bounded without recursion: a deep document fails cleanly, not with a stack overflow.
  assert.throws(() => parseXml(nested(1_000_000)), XmlSyntaxError);
  assert.equal(parseXml(nested(10), { maxDepth: 10 }).name, "a");
});

// --- Differential test against Python's expat (the parser Qubes itself used through lxml/ET) ---

type Tree = [string, [string, string][], (Tree | string)[]];

function toTree(element: XmlElement): Tree {
  const attributes = [...element.attributes].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return [
    element.name,
    attributes,
    element.children.map((c) => typeof c === "string" ? c : toTree(c)),
  ];
}

const PYTHON_ORACLE = `
import json, sys, xml.etree.ElementTree as ET
def tree(e):
    kids = []
    def add(t):
        if not t: return
        if kids and isinstance(kids[-1], str): kids[-1] += t
        else: kids.append(t)
    add(e.text)
    for c in e:
        kids.append(tree(c)); add(c.tail)
    return [e.tag, sorted(e.attrib.items()), kids]
out = []
for doc in json.load(sys.stdin):
    parser = ET.XMLParser(encoding="utf-8")  # the text is already decoded on our side
    try:
        parser.feed(doc.encode("utf-8"))
        out.append(tree(parser.close()))
    except ET.ParseError: out.append(None)
json.dump(out, sys.stdout)
`;

async function python(): Promise<string | undefined> {
  try {
    const probe = await new Deno.Command("python3", {
      args: ["-c", "import xml.etree.ElementTree"],
    }).output();
    return probe.code === 0 ? "python3" : undefined;
  } catch {
    return undefined;
  }
}

function mutants(base: string, count: number): string[] {
  let seed = 12345;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const inserts = [
    "<",
    ">",
    "&",
    "/",
    '"',
    "'",
    "=",
    " ",
    "]]>",
    "<!--",
    "-->",
    "&amp;",
    "<x>",
    "</x>",
    "?>",
  ];
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = random(base.length);
    const op = random(3);
    if (op === 0) out.push(base.slice(0, at) + base.slice(at + 1 + random(4)));
    else if (op === 1) {
      out.push(base.slice(0, at) + inserts[random(inserts.length)] + base.slice(at));
    } else out.push(base.slice(0, at) + inserts[random(inserts.length)] + base.slice(at + 1));
  }
  return out;
}

Deno.test({
  name: "parseXml() accepts and builds the same trees as Python's expat on samples and mutants",
  fn: async () => {
    if ((await python()) === undefined) {
      throw new Error("python3 (with xml.etree) not found: install the Debian package python3");
    }
    const samples = [
      R2_XML,
      R32_XML,
      R43_XML,
      `<a b="&#x20AC;&#8364;">x<![CDATA[&lt;]]>y<!--c--><?p q?>z</a>`,
      `<a>\r\n</a>`,
      `<a v="\t\n"/>`,
      `<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><a/>`,
      `<?xml version="1.0" standalone="maybe"?><a/>`,
      `<?xml encoding="UTF-8"?><a/>`,
    ];
    const cases: [doc: string, base: string][] = [
      ...samples.map((doc): [string, string] => [doc, ""]),
      ...mutants(R43_XML, 400).map((doc): [string, string] => [doc, R43_XML]),
      ...mutants(R32_XML, 200).map((doc): [string, string] => [doc, R32_XML]),
      ...mutants(R4_XML, 200).map((doc): [string, string] => [doc, R4_XML]),
    ];
    const docs = cases.map(([doc]) => doc);
    const child = new Deno.Command("python3", {
      args: ["-c", PYTHON_ORACLE],
      stdin: "piped",
      stdout: "piped",
    })
      .spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(docs)));
    await writer.close();
    const { code, stdout } = await child.output();
    assert.equal(code, 0);
    const expected: (Tree | null)[] = JSON.parse(new TextDecoder().decode(stdout));
    let rejected = 0;
    const mismatches: string[] = [];
    docs.forEach((doc, i) => {
      let actual: Tree | null;
      try {
        actual = toTree(parseXml(doc));
      } catch (error) {
        if (!(error instanceof XmlSyntaxError)) throw error;
        actual = null;
      }
      if (actual === null) rejected++;
      if (JSON.stringify(actual) !== JSON.stringify(expected[i])) {
        const base = cases[i]?.[1] ?? "";
        let at = 0;
        while (at < doc.length && doc[at] === base[at]) at++;
        mismatches.push(
          `document ${i}: ${actual === null ? "rejected" : "accepted"}, expat did the opposite` +
            ` or built another tree; near ${
              JSON.stringify(doc.slice(Math.max(0, at - 30), at + 30))
            }`,
        );
      }
    });
    assert.deepEqual(mismatches, []);
    assert.ok(rejected > 100 && rejected < docs.length - 100, `${rejected} rejected`);
  },
});

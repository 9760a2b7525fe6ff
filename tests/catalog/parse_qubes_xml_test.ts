import assert from "node:assert/strict";
import { DamagedError, ExitCode } from "../../lib/errors.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import { XmlSyntaxError } from "../../lib/catalog/xml.ts";
import { R2_XML, R4_XML } from "./_samples.ts";

function damaged(message: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof DamagedError, String(error));
    assert.equal(error.message, message);
    assert.equal(error.exitCode, ExitCode.Damaged);
    return true;
  };
}

Deno.test("parseQubesXml() picks the schema from the root element, for text and bytes", () => {
  assert.equal(parseQubesXml(R2_XML).schema, "core2");
  assert.equal(parseQubesXml(new TextEncoder().encode(R4_XML)).schema, "core3");
});

Deno.test("parseQubesXml() rejects a DOCTYPE with entities as damaged", () => {
  const xml = `<?xml version="1.0"?>
<!DOCTYPE qubes [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<qubes><domains/></qubes>`;
  assert.throws(
    () => parseQubesXml(xml),
    damaged(
      "Cannot read qubes.xml: document type declarations (DOCTYPE) are not allowed at line 2, column 1",
    ),
  );
  try {
    parseQubesXml(xml);
  } catch (error) {
    assert.ok((error as Error).cause instanceof XmlSyntaxError, "keeps the parser error as cause");
  }
});

Deno.test("parseQubesXml() rejects an unknown entity, an unclosed tag and truncation as damaged", () => {
  assert.throws(
    () => parseQubesXml(`<QubesVmCollection><QubesAppVm name="a&ouml;"/></QubesVmCollection>`),
    damaged('Cannot read qubes.xml: unknown entity "&ouml;" at line 1, column 39'),
  );
  assert.throws(
    () => parseQubesXml(`<qubes>\n  <domains>\n    <domain class="AppVM">\n  </domains>\n</qubes>`),
    damaged(
      'Cannot read qubes.xml: end tag "domains" does not match start tag "domain" at line 4, column 3',
    ),
  );
  assert.throws(
    () => parseQubesXml(R4_XML.slice(0, R4_XML.indexOf('<domain id="domain-12"'))),
    damaged('Cannot read qubes.xml: element "domains" is not closed at line 19, column 3'),
  );
  assert.throws(
    () => parseQubesXml(new Uint8Array([0x3c, 0x71, 0x3e, 0xc3])),
    damaged("Cannot read qubes.xml: bytes are not valid utf-8"),
  );
});

Deno.test("parseQubesXml() rejects other root elements and oversized documents", () => {
  assert.throws(
    () => parseQubesXml(`<firewall policy="allow"/>`),
    damaged(
      'Cannot read qubes.xml: root element "firewall" is neither "QubesVmCollection" nor "qubes"',
    ),
  );
  assert.throws(
    () => parseQubesXml(R2_XML, { maxLength: 1024 }),
    damaged(
      `Cannot read qubes.xml: document is ${R2_XML.length} characters long, more than the limit of 1024`,
    ),
  );
});

import assert from "node:assert/strict";
import { withDom0HomeFromEntry } from "../../lib/catalog/dom0_fallback.ts";
import { ownerOf } from "../../lib/catalog/owner.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import { R2_XML, R4_XML } from "./_samples.ts";

const NO_DOM0 = parseQubesXml(
  `<QubesVmCollection><QubesAppVm qid="5" name="work" template_qid="none" backup_content="True" backup_path="vm5"/></QubesVmCollection>`,
);

Deno.test("withDom0HomeFromEntry() adds dom0 from a dom0-home chunk when qubes.xml lists none", () => {
  assert.equal(withDom0HomeFromEntry(NO_DOM0, "vm5/private.img.000"), NO_DOM0);
  assert.equal(withDom0HomeFromEntry(NO_DOM0, "dom0-home/alice.000.hmac"), NO_DOM0);
  const catalog = withDom0HomeFromEntry(NO_DOM0, "dom0-home/alice.000");
  assert.deepEqual(catalog.dom0Home, {
    user: "alice",
    backupPath: "dom0-home/alice",
    safeUser: true,
  });
  assert.deepEqual(catalog.vms.map((vm) => [vm.name, vm.kind, vm.qid, vm.included]), [
    ["work", "standalone", 5, true],
    ["dom0", "admin", 0, true],
  ]);
  assert.equal(ownerOf(catalog, "dom0-home/alice.001")?.rest, ".001");
  assert.equal(withDom0HomeFromEntry(catalog, "dom0-home/bob.000"), catalog, "added once");
});

Deno.test("withDom0HomeFromEntry() leaves catalogues with an admin VM, or core3, alone", () => {
  const r2 = parseQubesXml(R2_XML);
  assert.equal(withDom0HomeFromEntry(r2, "dom0-home/mallory.000"), r2);
  const r4 = parseQubesXml(R4_XML);
  assert.equal(withDom0HomeFromEntry(r4, "dom0-home/mallory.000.enc"), r4);
});

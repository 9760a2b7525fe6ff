import assert from "node:assert/strict";
import { expectedItems } from "../../lib/catalog/expected.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import { R4_XML } from "./_samples.ts";

Deno.test("expectedItems(): core2 classes decide the items a VM must have", () => {
  const catalog = parseQubesXml(
    `<QubesVmCollection>
      <QubesAdminVm qid="0" name="dom0" backup_content="True" backup_path="dom0-home/alice"/>
      <QubesTemplateVm qid="1" name="tpl" backup_content="True" backup_path="vm1"/>
      <QubesAppVm qid="2" name="work" template_qid="1" backup_content="True" backup_path="vm2"/>
      <QubesAppVm qid="3" name="solo" template_qid="none" backup_content="True" backup_path="vm3"/>
      <QubesNetVm qid="4" name="net" template_qid="1" backup_content="True" backup_path="vm4"/>
      <QubesAppVm qid="5" name="left-out" template_qid="1" backup_content="False" backup_path="vm5"/>
      <QubesDisposableVm qid="6" name="disp" template_qid="1" backup_content="True" backup_path="vm6"/>
    </QubesVmCollection>`,
  );
  assert.deepEqual(expectedItems(catalog).map((item) => [item.vm.name, item.name]), [
    ["dom0", "dom0-home/alice"],
    ["tpl", "vm1/."],
    ["work", "vm2/private.img"],
    ["solo", "vm3/private.img"],
    ["solo", "vm3/root.img"],
    ["net", "vm4/private.img"],
  ]);
});

Deno.test("expectedItems(): core3 domains must hold their save_on_stop volumes", () => {
  const catalog = parseQubesXml(R4_XML);
  assert.deepEqual(expectedItems(catalog).map((item) => [item.vm.name, item.name]), [
    ["dom0", "dom0-home/alice"],
    ["work", "vm12/private.img"],
  ]);
});

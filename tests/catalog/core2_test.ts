import assert from "node:assert/strict";
import { catalogFromCore2 } from "../../lib/catalog/core2.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import { parseXml } from "../../lib/catalog/xml.ts";
import { R2_XML, R32_XML } from "./_samples.ts";

Deno.test("catalogFromCore2() reads the R2 sample with dom0 home, template, AppVM and StandaloneVM", () => {
  const catalog = parseQubesXml(R2_XML);
  assert.equal(catalog.schema, "core2");
  assert.deepEqual(
    catalog.vms.map((
      vm,
    ) => [vm.name, vm.qid, vm.klass, vm.kind, vm.template, vm.label, vm.included]),
    [
      ["dom0", 0, "QubesAdminVm", "admin", undefined, "black", true],
      ["fedora-20-x64", 1, "QubesTemplateVm", "template", undefined, "black", false],
      ["netvm", 2, "QubesNetVm", "app", "fedora-20-x64", "red", false],
      ["firewallvm", 3, "QubesProxyVm", "app", "fedora-20-x64", "green", false],
      ["my-tpl", 7, "QubesTemplateVm", "template", undefined, "gray", true],
      ["notes", 9, "QubesAppVm", "app", "my-tpl", "yellow", true],
      ["legacy", 11, "QubesAppVm", "standalone", undefined, "blue", true],
    ],
  );
  assert.deepEqual(catalog.vms[5], {
    name: "notes",
    safeName: true,
    qid: 9,
    klass: "QubesAppVm",
    kind: "app",
    template: "my-tpl",
    label: "yellow",
    included: true,
    backupPath: "vm9",
    backupSize: 2097152000,
    dirPath: "/var/lib/qubes/appvms/notes",
  });
  assert.equal(catalog.vms[0]?.dirPath, undefined, 'dir_path="None" is dropped');
  assert.equal(catalog.vms[1]?.backupPath, undefined, "empty backup_path is dropped");
  assert.equal(catalog.vms[6]?.backupSize, 10737418240);
  assert.deepEqual(catalog.dom0Home, {
    user: "alice",
    backupPath: "dom0-home/alice",
    safeUser: true,
  });
  assert.ok(
    Object.isFrozen(catalog) && Object.isFrozen(catalog.vms) && Object.isFrozen(catalog.vms[0]),
  );
});

Deno.test("catalogFromCore2() reads an R3.2 document: uuid, HVMs, disposable VM, stale backup_path", () => {
  const catalog = parseQubesXml(new TextEncoder().encode(R32_XML));
  const byName = new Map(catalog.vms.map((vm) => [vm.name, vm]));
  assert.equal(catalog.vms.length, 10);
  // backup_path is stale on sys-net (backup_content="False"): not included (trap T16).
  assert.equal(byName.get("sys-net")?.included, false);
  assert.equal(byName.get("sys-net")?.backupPath, "servicevms/sys-net");
  assert.equal(byName.get("fedora-23")?.kind, "template");
  assert.equal(byName.get("fedora-23")?.backupPath, "vm-templates/fedora-23");
  assert.equal(byName.get("win7")?.kind, "standalone");
  assert.equal(byName.get("win7")?.klass, "QubesHVm");
  assert.equal(byName.get("win7-tpl")?.kind, "template");
  assert.equal(byName.get("win7-app")?.template, "win7-tpl");
  assert.equal(byName.get("win7-app")?.included, false);
  assert.deepEqual(
    [byName.get("disp50")?.kind, byName.get("disp50")?.template, byName.get("disp50")?.included],
    ["disposable", "fedora-23", false],
  );
  assert.deepEqual(
    catalog.vms.filter((vm) => vm.included).map((vm) => vm.name),
    ["dom0", "fedora-23", "work", "work-web", "win7"],
  );
  assert.deepEqual(catalog.dom0Home, {
    user: "user0",
    backupPath: "dom0-home/user0",
    safeUser: true,
  });
});

Deno.test("catalogFromCore2() accepts QubesAdminVM spelling, unknown classes and missing attributes", () => {
  const catalog = catalogFromCore2(parseXml(
    `<QubesVmCollection>
      <QubesAdminVM qid="0" backup_content="True" backup_path="dom0-home/bob/"/>
      <QubesFutureVm qid="4" name="future" template_qid="1" backup_content="true"/>
      <QubesAppVm name="nameless-qid" template_qid="99"/>
      <QubesAppVm qid="x" template_qid="none"/>
    </QubesVmCollection>`,
  ));
  assert.deepEqual(catalog.vms.map((vm) => [vm.name, vm.kind, vm.qid, vm.included]), [
    ["dom0", "admin", 0, true],
    ["future", "other", 4, false], // only the exact text "True" counts, as in Qubes
    ["nameless-qid", "app", undefined, false],
    ["", "standalone", undefined, false],
  ]);
  assert.equal(catalog.vms[2]?.template, undefined, "unknown template qid stays unresolved");
  assert.equal(catalog.vms[3]?.safeName, false);
  assert.equal(catalog.dom0Home?.backupPath, "dom0-home/bob");
});

Deno.test("catalogFromCore2() gives no dom0 home when the admin VM is not included", () => {
  const catalog = parseQubesXml(
    `<QubesVmCollection><QubesAdminVm qid="0" name="dom0" backup_content="False" backup_path="dom0-home/alice"/></QubesVmCollection>`,
  );
  assert.equal(catalog.dom0Home, undefined);
  assert.equal(catalog.vms[0]?.included, false);
});

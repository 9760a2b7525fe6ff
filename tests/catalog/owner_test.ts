import assert from "node:assert/strict";
import { ownerOf } from "../../lib/catalog/owner.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import type { Catalog } from "../../lib/catalog/types.ts";
import { R2_XML, R32_XML, R4_XML } from "./_samples.ts";

function owner(catalog: Catalog, name: string): [string, string] | undefined {
  const found = ownerOf(catalog, name);
  return found && [found.vm.name, found.rest];
}

const HIDDEN = parseQubesXml(
  `<QubesVmCollection>
    <QubesAdminVm qid="0" name="dom0" backup_content="True" backup_path="dom0-home/user0"/>
    <QubesTemplateVm qid="3" name="tpl" template_qid="none" backup_content="True" backup_path="vm3"/>
    <QubesAppVm qid="5" name="five" template_qid="3" backup_content="True" backup_path="vm5"/>
    <QubesAppVm qid="50" name="fifty" template_qid="3" backup_content="False" backup_path="vm50"/>
  </QubesVmCollection>`,
);

Deno.test("ownerOf() matches whole components: vm5 owns vm5/… but not vm50/…", () => {
  assert.deepEqual(owner(HIDDEN, "vm5/private.img.000"), ["five", "private.img.000"]);
  assert.deepEqual(owner(HIDDEN, "vm5/private.img.000.hmac"), ["five", "private.img.000.hmac"]);
  assert.deepEqual(owner(HIDDEN, "vm5/private.img"), ["five", "private.img"]);
  assert.deepEqual(owner(HIDDEN, "vm5/apps/firefox.desktop"), ["five", "apps/firefox.desktop"]);
  assert.deepEqual(owner(HIDDEN, "vm5/"), ["five", ""]);
  assert.deepEqual(owner(HIDDEN, "vm5"), ["five", ""]);
  assert.equal(owner(HIDDEN, "vm50/private.img.000"), undefined, "vm50 is not included");
  assert.equal(owner(HIDDEN, "vm5x/private.img"), undefined);
  assert.equal(owner(HIDDEN, "vm5.000"), undefined);
  assert.equal(owner(HIDDEN, "qubes.xml.000"), undefined);
  assert.equal(owner(HIDDEN, "/vm5/private.img"), undefined);
});

Deno.test("ownerOf() gives template chunks and the R2-beta3 vm3./ alias to the template", () => {
  assert.deepEqual(owner(HIDDEN, "vm3/..000"), ["tpl", "..000"]);
  assert.deepEqual(owner(HIDDEN, "vm3/./root.img"), ["tpl", "./root.img"]);
  assert.deepEqual(owner(HIDDEN, "vm3./root.img"), ["tpl", "./root.img"]);
  assert.deepEqual(owner(HIDDEN, "vm3./"), ["tpl", "./"]);
  assert.deepEqual(owner(HIDDEN, "vm3..000"), ["tpl", "..000"]);
  assert.deepEqual(owner(HIDDEN, "vm3..000.hmac"), ["tpl", "..000.hmac"]);
  assert.equal(owner(HIDDEN, "vm3.x/root.img"), undefined);
  assert.equal(owner(HIDDEN, "vm30./root.img"), undefined);
});

Deno.test("ownerOf() matches the dom0 home with '.' for chunks and '/' for members, unlike rstrip (T18)", () => {
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0.000"), ["dom0", ".000"]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0.1000"), ["dom0", ".1000"]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0.000.hmac"), ["dom0", ".000.hmac"]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0.003.enc"), ["dom0", ".003.enc"]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0/.bashrc"), ["dom0", ".bashrc"]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0/"), ["dom0", ""]);
  assert.deepEqual(owner(HIDDEN, "dom0-home/user0"), ["dom0", ""]);
  // What rstrip('.000') would have produced, and near misses:
  assert.equal(owner(HIDDEN, "dom0-home/user.000"), undefined);
  assert.equal(owner(HIDDEN, "dom0-home/user/x"), undefined);
  assert.equal(owner(HIDDEN, "dom0-home/user00.000"), undefined);
  assert.equal(owner(HIDDEN, "dom0-home/user0.bak/x"), undefined);
  assert.equal(owner(HIDDEN, "dom0-home/user0.abc"), undefined);
  assert.equal(owner(HIDDEN, "dom0-home/other.000"), undefined);
});

Deno.test("ownerOf() handles core3 paths written with a trailing slash", () => {
  const catalog = parseQubesXml(R4_XML);
  assert.deepEqual(owner(catalog, "vm12/private.img.000.enc"), ["work", "private.img.000.enc"]);
  assert.deepEqual(owner(catalog, "vm12/private.img"), ["work", "private.img"]);
  assert.equal(owner(catalog, "vm12private.img.000.enc"), undefined);
  assert.equal(owner(catalog, "vm120/private.img.000.enc"), undefined);
  assert.deepEqual(owner(catalog, "dom0-home/alice.000.enc"), ["dom0", ".000.enc"]);
  assert.equal(owner(catalog, "vm3/root.img.000.enc"), undefined, "fedora-39 is not included");
});

Deno.test("ownerOf() uses names-visible paths and ignores stale paths of excluded VMs", () => {
  const r2 = parseQubesXml(R2_XML);
  assert.deepEqual(owner(r2, "vm7/..000"), ["my-tpl", "..000"]);
  assert.deepEqual(owner(r2, "vm11/root.img.012"), ["legacy", "root.img.012"]);
  assert.deepEqual(owner(r2, "dom0-home/alice.000"), ["dom0", ".000"]);
  const r32 = parseQubesXml(R32_XML);
  assert.deepEqual(owner(r32, "appvms/work/private.img.000"), ["work", "private.img.000"]);
  assert.deepEqual(owner(r32, "appvms/work-web/private.img.000"), ["work-web", "private.img.000"]);
  assert.deepEqual(owner(r32, "vm-templates/fedora-23/..000"), ["fedora-23", "..000"]);
  assert.equal(owner(r32, "servicevms/sys-net/private.img.000"), undefined, "stale path (T16)");
  assert.equal(owner(r32, "appvms/workstation/private.img.000"), undefined);
  assert.equal(owner(r32, "appvms"), undefined);
  assert.deepEqual(owner(r32, "dom0-home/user0.000"), ["dom0", ".000"]);
});

Deno.test("ownerOf() prefers the longest path and works on catalogues built by hand", () => {
  const catalog: Catalog = {
    schema: "core2",
    vms: [
      {
        name: "outer",
        safeName: true,
        klass: "QubesAppVm",
        kind: "app",
        included: true,
        backupPath: "a",
      },
      {
        name: "inner",
        safeName: true,
        klass: "QubesAppVm",
        kind: "app",
        included: true,
        backupPath: "a/b",
      },
    ],
  };
  assert.deepEqual(owner(catalog, "a/b/c"), ["inner", "c"]);
  assert.deepEqual(owner(catalog, "a/bc"), ["outer", "bc"]);
  assert.equal(owner({ schema: "core3", vms: [] }, "a/b"), undefined);
});

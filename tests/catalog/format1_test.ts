import assert from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { catalogForFormat1 } from "../../lib/catalog/format1.ts";
import { ownerOf } from "../../lib/catalog/owner.ts";
import { R1_XML, R2_XML, R4_XML } from "./_samples.ts";

/** Lists a format-1 backup folder the way a caller would: relative VM folders and dom0 users. */
async function listFormat1(root: string): Promise<{ dirs: Set<string>; users: string[] }> {
  const dirs = new Set<string>();
  for (const top of ["appvms", "servicevms", "vm-templates"]) {
    try {
      for await (const entry of Deno.readDir(`${root}/${top}`)) {
        if (entry.isDirectory) dirs.add(`${top}/${entry.name}`);
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  const users: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${root}/dom0-home`)) users.push(entry.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return { dirs, users };
}

Deno.test("catalogForFormat1() marks VMs whose folder a cp -rp backup holds, and the dom0 home", async () => {
  const source = await Deno.makeTempDir();
  const backup = `${await Deno.makeTempDir()}/qubes-2012-01-01-120000`;
  try {
    // Build /var/lib/qubes-like sources and copy the chosen ones as R1's backup_do did: cp -rp.
    for (const dir of ["appvms/work", "vm-templates/fedora-14-x64", "home/alice"]) {
      await Deno.mkdir(`${source}/${dir}`, { recursive: true });
      await Deno.writeTextFile(`${source}/${dir}/private.img`, "data");
    }
    await Deno.mkdir(`${backup}/appvms`, { recursive: true });
    await Deno.mkdir(`${backup}/vm-templates`);
    await Deno.mkdir(`${backup}/dom0-home`);
    await Deno.writeTextFile(`${backup}/qubes.xml`, R1_XML);
    for (
      const [from, to] of [
        ["appvms/work", "appvms/work"],
        ["vm-templates/fedora-14-x64", "vm-templates/fedora-14-x64"],
        ["home/alice", "dom0-home/alice"],
      ]
    ) {
      const cp = await new Deno.Command("cp", {
        args: ["-rp", `${source}/${from}`, `${backup}/${to}`],
      })
        .output();
      assert.equal(cp.code, 0, new TextDecoder().decode(cp.stderr));
    }
    const { dirs, users } = await listFormat1(backup);
    const catalog = catalogForFormat1(await Deno.readFile(`${backup}/qubes.xml`), dirs, users);
    assert.deepEqual(
      catalog.vms.map((vm) => [vm.name, vm.kind, vm.included, vm.backupPath]),
      [
        ["fedora-14-x64", "template", true, "vm-templates/fedora-14-x64"],
        ["netvm", "app", false, undefined],
        ["firewallvm", "app", false, undefined],
        ["work", "app", true, "appvms/work"],
        ["personal", "app", false, undefined],
        ["escape", "app", false, undefined],
        ["disp1", "disposable", false, undefined],
        ["dom0", "admin", true, "dom0-home/alice"],
      ],
    );
    assert.deepEqual(catalog.dom0Home, {
      user: "alice",
      backupPath: "dom0-home/alice",
      safeUser: true,
    });
    assert.equal(ownerOf(catalog, "appvms/work/private.img")?.vm.name, "work");
    assert.equal(ownerOf(catalog, "dom0-home/alice/private.img")?.vm.name, "dom0");
  } finally {
    await Deno.remove(source, { recursive: true });
    await Deno.remove(backup.slice(0, backup.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("catalogForFormat1() normalises folder names and ignores backup_* attributes", () => {
  const catalog = catalogForFormat1(
    R2_XML,
    new Set(["./appvms/notes/", "servicevms//netvm", "../etc", "/var/lib/qubes/appvms/legacy"]),
    [],
  );
  assert.deepEqual(
    catalog.vms.filter((vm) => vm.included).map((vm) => [vm.name, vm.backupPath]),
    [["netvm", "servicevms/netvm"], ["notes", "appvms/notes"]],
  );
  assert.equal(catalog.vms.find((vm) => vm.name === "dom0")?.included, false);
  assert.equal(catalog.dom0Home, undefined);
  assert.equal(catalog.vms.find((vm) => vm.name === "legacy")?.backupSize, undefined);
});

Deno.test("catalogForFormat1() keeps a dir_path escaping /var/lib/qubes out, even if present", () => {
  const catalog = catalogForFormat1(R1_XML, new Set(["etc", "../../etc", "appvms/personal"]), []);
  assert.deepEqual(catalog.vms.filter((vm) => vm.included).map((vm) => vm.name), ["personal"]);
});

Deno.test("catalogForFormat1() rejects a dom0-home with several users and a core3 document", () => {
  assert.throws(
    () => catalogForFormat1(R1_XML, new Set(), ["alice", "bob"]),
    (error) =>
      error instanceof DamagedError &&
      error.message ===
        'Cannot find the dom0 home: "dom0-home" holds 2 entries ("alice", "bob"), expected one user',
  );
  assert.throws(
    () => catalogForFormat1(R4_XML, new Set(), []),
    (error) =>
      error instanceof DamagedError &&
      error.message ===
        "Cannot read qubes.xml: a format-1 backup needs a <QubesVmCollection> document, not <qubes>",
  );
});

Deno.test("catalogForFormat1() flags an unsafe dom0 user", () => {
  const catalog = catalogForFormat1(R1_XML, new Set(), ["bad\nname"]);
  assert.equal(catalog.dom0Home?.safeUser, false);
});

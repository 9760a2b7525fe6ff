import assert from "node:assert/strict";
import { DamagedError } from "../../lib/errors.ts";
import { parseQubesXml } from "../../lib/catalog/parse_qubes_xml.ts";
import { R43_XML, R4_XML } from "./_samples.ts";

Deno.test("catalogFromCore3() reads the R4 sample: labels by id, trailing slash stripped, dom0 home", () => {
  const catalog = parseQubesXml(R4_XML);
  assert.equal(catalog.schema, "core3");
  assert.deepEqual(catalog.vms, [
    {
      name: "dom0",
      safeName: true,
      qid: 0,
      klass: "AdminVM",
      kind: "admin",
      label: "black",
      included: true,
      backupPath: "dom0-home/alice",
      backupSize: 41943040,
    },
    {
      name: "fedora-39",
      safeName: true,
      qid: 3,
      klass: "TemplateVM",
      kind: "template",
      label: "black",
      included: false,
    },
    {
      name: "work",
      safeName: true,
      qid: 12,
      klass: "AppVM",
      kind: "app",
      template: "fedora-39",
      label: "green",
      included: true,
      backupPath: "vm12",
      backupSize: 2147483648,
      backupVolumes: ["private"],
    },
  ]);
  assert.deepEqual(catalog.dom0Home, {
    user: "alice",
    backupPath: "dom0-home/alice",
    safeUser: true,
  });
});

Deno.test("catalogFromCore3() reads labels past 8, plain names, DispVM, RemoteVM and flags a hostile name", () => {
  const catalog = parseQubesXml(R43_XML);
  assert.deepEqual(
    catalog.vms.map((vm) => [vm.name, vm.kind, vm.label, vm.included, vm.backupPath, vm.safeName]),
    [
      ["disp1234", "disposable", "magenta", true, "vm5", true],
      ["remote-box", "other", "white & bright", false, "vm6", true],
      ["vault", "standalone", "purple", true, "vm7", true],
      ["../../etc", "app", "cyan", true, "vm8", false],
      ["mail", "app", "blue", false, "vm50", true],
    ],
  );
  assert.equal(catalog.vms[0]?.template, "fedora-40-dvm");
  assert.equal(catalog.vms[1]?.klass, "RemoteVM");
  assert.equal(catalog.vms[2]?.backupSize, undefined, "a non-numeric size is dropped");
  assert.equal(catalog.dom0Home, undefined);
});

Deno.test("catalogFromCore3() treats backup-content texts as the client does", () => {
  const doc = (text: string) =>
    `<qubes><domains><domain class="AppVM"><properties><property name="name">a</property></properties><features>${text}</features></domain></domains></qubes>`;
  const included = (features: string) => parseQubesXml(doc(features)).vms[0]?.included;
  assert.equal(included(`<feature name="backup-content">1</feature>`), true);
  assert.equal(included(`<feature name="backup-content">True</feature>`), true);
  assert.equal(included(`<feature name="backup-content">true</feature>`), true);
  assert.equal(included(`<feature name="backup-content"/>`), false);
  assert.equal(included(`<feature name="backup-content"> </feature>`), false);
  assert.equal(included(`<feature name="backup-content">0</feature>`), false);
  assert.equal(included(`<feature name="backup-content">False</feature>`), false);
  assert.equal(included(``), false);
});

Deno.test("catalogFromCore3() rejects a document without <domains>", () => {
  assert.throws(
    () => parseQubesXml("<qubes><labels/></qubes>"),
    (error) =>
      error instanceof DamagedError &&
      error.message === "Cannot read qubes.xml: the <qubes> document has no <domains> element",
  );
});

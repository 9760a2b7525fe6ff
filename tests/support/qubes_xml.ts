/**
 * The backup's copy of the Qubes VM database, as the Qubes versions wrote it: "core2"
 * (`<QubesVmCollection>`, formats 1-3, spec §10.1-10.2) and "core3" (`<qubes>`, format 4,
 * spec §10.3).
 *
 * @module
 */

/** One VM as it appears in qubes.xml. */
export interface XmlVm {
  qid: number;
  name: string;
  kind: "app" | "template" | "standalone" | "net";
  /** Label name: red, orange, yellow, green, gray, blue, purple, black. */
  label: string;
  /** The template's qid and name (app and net VMs). */
  template?: { qid: number; name: string };
  /** Absolute VM directory, e.g. `/var/lib/qubes/appvms/work`. */
  dirPath: string;
  /** Whether this VM's data is in the backup. */
  included: boolean;
  /** Subdir without trailing slash (`vm5`, `appvms/work`); may be stale when not included. */
  backupPath: string;
  /** Bytes the VM's data takes (an estimate, as in Qubes). */
  backupSize: number;
  /** Volume sizes for core3 `<volume-config>` (`private`, `root`). */
  volumes?: Array<{ name: string; size: number }>;
}

/** dom0 (the AdminVM) as it appears in qubes.xml. */
export interface XmlDom0 {
  included: boolean;
  /** `dom0-home/<user>`. */
  backupPath: string;
  backupSize: number;
}

/** The eight standard labels in the order of their core3 ids (`label-1` = red …). */
export const LABELS: ReadonlyArray<readonly [string, string]> = [
  ["red", "0xcc0000"],
  ["orange", "0xf57900"],
  ["yellow", "0xedd400"],
  ["green", "0x73d216"],
  ["gray", "0x555753"],
  ["blue", "0x3465a4"],
  ["purple", "0x75507b"],
  ["black", "0x000000"],
];

/** Escapes text for an XML attribute or element. */
export function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function attrs(pairs: Array<[string, string | number]>): string {
  return pairs.map(([k, v]) => `${k}="${xmlEscape(String(v))}"`).join(" ");
}

const CORE2_TAG = {
  app: "QubesAppVm",
  standalone: "QubesAppVm",
  template: "QubesTemplateVm",
  net: "QubesNetVm",
} as const;

/**
 * Writes a core2 `qubes.xml` (R1/R2/R3). With `withBackupAttributes` (formats 2, 3) every VM
 * carries `backup_content`, `backup_path`, `backup_size`, `backup_timestamp` and a
 * `QubesAdminVm` element describes dom0; without it (format 1) neither exists.
 */
export function core2Xml(
  vms: XmlVm[],
  dom0: XmlDom0 | undefined,
  withBackupAttributes: boolean,
): string {
  const firstOf = (kind: XmlVm["kind"]) => vms.find((v) => v.kind === kind)?.qid;
  const defaultTemplate = firstOf("template");
  const defaultNet = firstOf("net");
  const root = attrs([
    ["default_template", defaultTemplate ?? "None"],
    ["default_netvm", defaultNet ?? "None"],
    ["default_fw_netvm", defaultNet ?? "None"],
    ["updatevm", defaultNet ?? "None"],
    ["clockvm", defaultNet ?? "None"],
    ["default_kernel", "3.12.22-1"],
  ]);
  const lines = [`<?xml version='1.0' encoding='UTF-8'?>`, `<QubesVmCollection ${root}>`];
  if (withBackupAttributes) {
    const d = dom0 ?? { included: false, backupPath: "", backupSize: 0 };
    lines.push(
      `  <QubesAdminVm ${
        attrs([
          ["qid", 0],
          ["name", "dom0"],
          ["label", "black"],
          ["dir_path", "None"],
          ["include_in_backups", "True"],
          ["installed_by_rpm", "False"],
          ["internal", "False"],
          ["backup_content", d.included ? "True" : "False"],
          ["backup_path", d.backupPath],
          ["backup_size", d.backupSize],
          ["backup_timestamp", "1404216000"],
        ])
      }/>`,
    );
  }
  for (const vm of vms) {
    const pairs: Array<[string, string | number]> = [
      ["qid", vm.qid],
      ["name", vm.name],
      ["dir_path", vm.dirPath],
      ["conf_file", `${vm.dirPath}/${vm.name}.conf`],
      ["template_qid", vm.template?.qid ?? "none"],
      ["netvm_qid", "none"],
      ["uses_default_netvm", "False"],
      ["label", vm.label],
      ["memory", 400],
      ["maxmem", 4000],
      ["vcpus", 2],
      ["private_img", "private.img"],
      ["include_in_backups", "True"],
      ["installed_by_rpm", "False"],
      ["internal", "False"],
    ];
    if (vm.kind === "template" || vm.kind === "standalone") pairs.push(["root_img", "root.img"]);
    if (vm.kind === "net") pairs.push(["netid", vm.qid]);
    if (withBackupAttributes) {
      pairs.push(
        ["backup_content", vm.included ? "True" : "False"],
        ["backup_path", vm.backupPath],
        ["backup_size", vm.backupSize],
        ["backup_timestamp", "1404216000"],
      );
    }
    lines.push(`  <${CORE2_TAG[vm.kind]} ${attrs(pairs)}/>`);
  }
  lines.push("</QubesVmCollection>", "");
  return lines.join("\n");
}

const CORE3_CLASS = {
  app: "AppVM",
  standalone: "StandaloneVM",
  template: "TemplateVM",
  net: "AppVM",
} as const;

function labelId(name: string): string {
  const index = LABELS.findIndex(([n]) => n === name);
  return index < 0 ? name : `label-${index + 1}`;
}

function feature(name: string, value: string): string {
  return value === ""
    ? `        <feature name="${name}"/>`
    : `        <feature name="${name}">${xmlEscape(value)}</feature>`;
}

function property(name: string, value: string | number): string {
  return `        <property name="${name}">${xmlEscape(String(value))}</property>`;
}

/**
 * Writes a core3 `qubes.xml` (R4): `<labels>`, `<properties>`, `<domains>` with the backup
 * features `backup-content` (`1` or empty), `backup-path` (`vm5/`, dom0 `dom0-home/<user>`)
 * and `backup-size`, as the R4 backup wrote them into its copy.
 */
export function core3Xml(vms: XmlVm[], dom0: XmlDom0 | undefined): string {
  const lines = [`<?xml version='1.0' encoding='UTF-8'?>`, `<qubes>`, `  <labels>`];
  LABELS.forEach(([name, color], i) => {
    lines.push(`    <label id="label-${i + 1}" color="${color}">${name}</label>`);
  });
  lines.push(`  </labels>`, `  <pools>`);
  lines.push(`    <pool name="varlibqubes" driver="file-reflink" dir_path="/var/lib/qubes"/>`);
  lines.push(`  </pools>`, `  <properties>`);
  const template = vms.find((v) => v.kind === "template");
  if (template) lines.push(property("default_template", template.name).slice(4));
  lines.push(`  </properties>`, `  <domains>`);
  const d = dom0 ?? { included: false, backupPath: "", backupSize: 0 };
  lines.push(`    <domain id="domain-0" class="AdminVM">`, `      <properties>`);
  lines.push(property("label", "label-8"), `      </properties>`, `      <features>`);
  lines.push(feature("backup-content", d.included ? "1" : ""));
  if (d.included) {
    lines.push(feature("backup-path", d.backupPath), feature("backup-size", String(d.backupSize)));
  }
  lines.push(`      </features>`, `      <tags/>`, `    </domain>`);
  for (const vm of [...vms].sort((a, b) => a.qid - b.qid)) {
    lines.push(`    <domain id="domain-${vm.qid}" class="${CORE3_CLASS[vm.kind]}">`);
    lines.push(`      <properties>`, property("qid", vm.qid), property("name", vm.name));
    lines.push(property("label", labelId(vm.label)));
    if (vm.template) lines.push(property("template", vm.template.name));
    if (vm.kind === "net") lines.push(property("provides_network", "True"));
    lines.push(`      </properties>`, `      <features>`);
    lines.push(feature("backup-content", vm.included ? "1" : ""));
    if (vm.included) {
      lines.push(
        feature("backup-path", `${vm.backupPath}/`),
        feature("backup-size", String(vm.backupSize)),
      );
    }
    lines.push(`      </features>`, `      <tags/>`, `      <volume-config>`);
    for (const v of vm.volumes ?? []) {
      const extra = v.name === "private"
        ? `save_on_stop="True" rw="True"`
        : vm.kind === "app" || vm.kind === "net"
        ? `snap_on_start="True"`
        : `save_on_stop="True" rw="True"`;
      lines.push(
        `        <volume name="${v.name}" pool="varlibqubes" size="${v.size}" ${extra}/>`,
      );
    }
    lines.push(`      </volume-config>`, `    </domain>`);
  }
  lines.push(`  </domains>`, `</qubes>`, "");
  return lines.join("\n");
}

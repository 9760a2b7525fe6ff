/**
 * What a format-1 backup folder becomes in format 3: the items R2/R3 would have made of the
 * same VMs (spec section 13.2), and a `qubes.xml` with the attributes the R2/R3 ("core2")
 * parser of `qvm-backup-restore` needs to find them (spec section 10.1).
 *
 * @module
 */

import type { Catalog, VmRecord } from "../catalog/mod.ts";
import { DamagedError } from "../errors.ts";
import { describeFsError } from "../fs_errors.ts";

/** One item to write: its name, the file or folder it comes from, its member name. */
export interface PlannedItem {
  /** Item name: `appvms/work/private.img`, `vm-templates/tpl/.`, `dom0-home/alice`. */
  name: string;
  /** Absolute or source-relative path of the file or folder. */
  path: string;
  /** Name of its first tar member (the item name; `.` items keep the `.`). */
  member: string;
}

/** The order R2/R3 queued a non-template VM's files in (spec section 2.2). */
const VM_FILE_ORDER = [
  "private.img",
  "icon.png",
  "apps.templates",
  "apps",
  "kernels",
  "firewall.xml",
  "whitelisted-appmenus.list",
  "root.img",
];

function rank(name: string): number {
  const at = VM_FILE_ORDER.indexOf(name);
  return at < 0 ? VM_FILE_ORDER.length : at;
}

async function entries(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) names.push(entry.name);
  } catch (error) {
    throw new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "file", name: path },
      detail: describeFsError(error),
    }, { cause: error });
  }
  return names.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * An upper bound of the inner tar bytes of everything below `path`: data rounded to blocks
 * and 2048 bytes of headers per member. (`qvm-backup-restore` of a backup kept in a qube
 * stops when the chunks it receives exceed the sum of `backup_size`, trap T23.)
 */
async function tarBound(path: string): Promise<number> {
  const info = await Deno.lstat(path);
  let total = 2048 + (info.isFile ? Math.ceil(info.size / 512) * 512 : 0);
  if (info.isDirectory) {
    for await (const entry of Deno.readDir(path)) total += await tarBound(`${path}/${entry.name}`);
  }
  return total;
}

/** `backup_size` for the items below `paths`: their tar bound, record padding, 1% margin. */
async function backupSize(paths: string[]): Promise<number> {
  let total = 0;
  for (const path of paths) total += await tarBound(path) + 20480;
  return Math.ceil(total * 1.01) + 65536;
}

/** The items of a format-1 backup and each included VM's size. */
export interface Format1Plan {
  items: PlannedItem[];
  /** `backup_size` by backup path. */
  sizes: Map<string, number>;
}

/**
 * Plans the items: non-template VMs file by file, templates as one whole-folder item
 * (`<path>/.`), the dom0 home last (spec section 2.2).
 *
 * @param dir The format-1 backup folder.
 * @param catalog Its catalogue (from `openBackup`).
 */
export async function planFormat1(dir: string, catalog: Catalog): Promise<Format1Plan> {
  const items: PlannedItem[] = [];
  const sizes = new Map<string, number>();
  const included = catalog.vms.filter((vm) => vm.included && vm.kind !== "admin" && vm.backupPath);
  const ordered = [
    ...included.filter((vm) => vm.kind !== "template"),
    ...included.filter((vm) => vm.kind === "template"),
  ];
  for (const vm of ordered) {
    const path = vm.backupPath!;
    const folder = `${dir}/${path}`;
    if (vm.kind === "template") {
      items.push({ name: `${path}/.`, path: folder, member: `${path}/.` });
      sizes.set(path, await backupSize([folder]));
      continue;
    }
    const names = await entries(folder);
    for (const name of names) {
      items.push({ name: `${path}/${name}`, path: `${folder}/${name}`, member: `${path}/${name}` });
    }
    sizes.set(path, await backupSize(names.map((name) => `${folder}/${name}`)));
  }
  const home = catalog.dom0Home;
  if (home) {
    const folder = `${dir}/${home.backupPath}`;
    sizes.set(home.backupPath, await backupSize([folder]));
    items.push({ name: home.backupPath, path: folder, member: home.backupPath });
  }
  return { items, sizes };
}

function attr(name: string, value: string): string {
  return `${name}="${value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;")}"`;
}

function backupAttributes(vm: VmRecord | undefined, sizes: Map<string, number>): string {
  if (vm?.included && vm.backupPath) {
    return [
      attr("backup_content", "True"),
      attr("backup_path", vm.backupPath),
      attr("backup_size", String(sizes.get(vm.backupPath) ?? 0)),
    ].join(" ");
  }
  return [attr("backup_content", "False"), attr("backup_path", ""), attr("backup_size", "0")]
    .join(" ");
}

const BACKUP_ATTRIBUTE = /\s+backup_(?:content|path|size|timestamp)\s*=\s*("[^"]*"|'[^']*')/g;

function attributeValue(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`).exec(tag);
  return match ? match[2] ?? match[3] : undefined;
}

/**
 * The `qubes.xml` of a format-1 backup with what the core2 parser needs added: every VM
 * element gets `backup_content`, `backup_path` and `backup_size`; when the backup holds a dom0
 * home and the document has no `QubesAdminVm` (R1 had none), one is added as the first VM
 * element (`qid="0"`, as R2/R3 wrote it). Nothing else changes.
 *
 * @param xml The original bytes.
 * @param catalog Its format-1 catalogue.
 * @param sizes `backup_size` by backup path.
 */
export function format1QubesXml(
  xml: Uint8Array,
  catalog: Catalog,
  sizes: Map<string, number>,
): Uint8Array {
  const text = new TextDecoder().decode(xml);
  const byName = new Map(catalog.vms.map((vm) => [vm.name, vm]));
  let adminSeen = false;
  let rootEnd = -1;
  const out = text.replace(/<(Qubes\w+)(\s[^>]*?)?(\/?)>/g, (tag, element, attrs = "", close) => {
    if (element === "QubesVmCollection") {
      rootEnd = -2;
      return tag;
    }
    const name = attributeValue(tag, "name");
    const vm = name === undefined ? undefined : byName.get(name);
    if (element === "QubesAdminVm") adminSeen = true;
    const kept = (attrs as string).replace(BACKUP_ATTRIBUTE, "").replace(/\s+$/, "");
    return `<${element}${kept} ${backupAttributes(vm, sizes)}${close}>`;
  });
  if (rootEnd !== -2) {
    throw new DamagedError({
      reason: "damaged",
      action: "convert",
      subject: { kind: "file", name: "qubes.xml" },
      detail: "it has no <QubesVmCollection> element",
    });
  }
  const home = catalog.dom0Home;
  if (adminSeen || !home) return new TextEncoder().encode(out);
  const root = /<QubesVmCollection(\s[^>]*)?>/.exec(out)!;
  const at = root.index + root[0].length;
  const admin = `\n  <QubesAdminVm ${
    [
      attr("qid", "0"),
      attr("name", "dom0"),
      attr("label", "black"),
      attr("backup_content", "True"),
      attr("backup_path", home.backupPath),
      attr("backup_size", String(sizes.get(home.backupPath) ?? 0)),
    ].join(" ")
  }/>`;
  return new TextEncoder().encode(out.slice(0, at) + admin + out.slice(at));
}

/**
 * Turns a {@link FixtureSpec} into a plan: settled options, the items in backup order with their
 * subdirs, the qubes.xml text and the backup-header text.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import type { FixtureSpec, FixtureVm } from "./backup_builder.ts";
import { runText } from "./_run.ts";
import { core2Xml, core3Xml, type XmlVm } from "./qubes_xml.ts";

/** One item to pack: `tar -C <dir> <base>` with members renamed to `<subdir><base>…`. */
export interface PlannedItem {
  /** VM name, `dom0` for the home, `""` for qubes.xml. */
  owner: string;
  dir: string;
  base: string;
  subdir: string;
  /** dom0 home: never `--dereference`d. */
  isDom0Home: boolean;
}

/** A spec with every default settled, plus what follows from it. */
export interface Plan {
  format: 1 | 2 | 3 | 4;
  passphrase: string;
  encrypted: boolean;
  compressed: boolean;
  v2Variant: "r2" | "emergency-doc" | "beta3";
  hmacAlgorithm: string;
  hmacTextStyle: "openssl3" | "openssl1";
  cryptoAlgorithm: string;
  kdfDigest: "md5" | "sha256";
  compressionFilter: string;
  xform: "old" | "new";
  volumeKiB: number;
  chunkBytes: number;
  trailingEmptyChunk: boolean | undefined;
  dereference: boolean;
  scryptLogN: number | undefined;
  scryptMaxTime: number | undefined;
  v4Tar: "gnu" | "pax-sparse";
  zlibEmulation: boolean;
  backupId: string;
  /** VM and dom0 items in backup order (qubes.xml not included). */
  items: PlannedItem[];
  qubesXml: string;
  /** backup-header text, absent for v1 and v2 beta3. */
  header: string | undefined;
}

const KIND_DIR = {
  app: "appvms",
  standalone: "appvms",
  template: "vm-templates",
  net: "servicevms",
} as const;

const DEFAULT_LABEL = { app: "green", standalone: "green", template: "black", net: "red" };

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function defaultItems(vm: FixtureVm, format: number): Promise<string[]> {
  const candidates: string[] = [];
  if (format === 4) {
    if (vm.kind === "template" || vm.kind === "standalone") candidates.push("root.img");
    candidates.push("private.img", "firewall.xml", "notes.txt");
  } else {
    if (vm.kind === "template") return ["."];
    candidates.push("private.img", "icon.png");
    if (vm.kind === "standalone") {
      candidates.push(
        await exists(join(vm.dir, "apps.templates")) ? "apps.templates" : "apps",
        "kernels",
      );
    }
    candidates.push("firewall.xml", "whitelisted-appmenus.list");
    if (vm.kind === "standalone") candidates.push("root.img");
  }
  const found: string[] = [];
  for (const name of candidates) if (await exists(join(vm.dir, name))) found.push(name);
  if (format === 4 && found.length === 0) return ["empty"];
  return found;
}

/** `du -sb` of the given paths, summed (the estimate Qubes stored as backup size). */
async function apparentSize(paths: string[]): Promise<number> {
  if (paths.length === 0) return 0;
  const out = await runText("du", ["-sb", "--", ...paths]);
  return out.trim().split("\n").reduce((sum, line) => sum + Number(line.split("\t")[0]), 0);
}

function vmOrder(vms: FixtureVm[], format: number): FixtureVm[] {
  if (format === 4) return [...vms].sort((a, b) => a.qid - b.qid);
  const templates = vms.filter((v) => v.kind === "template");
  let others = vms.filter((v) => v.kind !== "template");
  if (format === 3) others = [...others].sort((a, b) => (a.name < b.name ? -1 : 1));
  else {
    others = [
      ...others.filter((v) => v.kind !== "net"),
      ...others.filter((v) => v.kind === "net"),
    ];
  }
  return [...others, ...templates];
}

function makeHeader(p: Omit<Plan, "items" | "qubesXml" | "header">): string | undefined {
  const bool = (b: boolean) => (b ? "True" : "False");
  if (p.format === 1 || (p.format === 2 && p.v2Variant === "beta3")) return undefined;
  if (p.format === 4) {
    return [
      "version=4",
      "encrypted=True",
      `compressed=${bool(p.compressed)}`,
      `compression-filter=${p.compressionFilter}`,
      "hmac-algorithm=scrypt",
      `backup-id=${p.backupId}`,
      "",
    ].join("\n");
  }
  const lines = p.format === 3 ? ["version=3"] : [];
  lines.push(
    `hmac-algorithm=${p.hmacAlgorithm}`,
    `crypto-algorithm=${p.cryptoAlgorithm}`,
    `encrypted=${bool(p.encrypted)}`,
    `compressed=${bool(p.compressed)}`,
  );
  if (p.format === 3 && p.compressed) lines.push(`compression-filter=${p.compressionFilter}`);
  return lines.join("\n") + "\n";
}

/**
 * Settles defaults, checks the spec and lists the items.
 *
 * @throws {Error} for combinations no Qubes writer produced or inconsistent VMs.
 */
export async function planBackup(spec: FixtureSpec): Promise<Plan> {
  const format = spec.format;
  const v2Variant = spec.v2Variant ?? "r2";
  if (spec.v2Variant !== undefined && format !== 2) {
    throw new Error(`Cannot build format ${format}: v2Variant applies to format 2 only`);
  }
  if (format === 4 && spec.encrypted === false) {
    throw new Error("Cannot build format 4 unencrypted: R4 backups are always encrypted");
  }
  const encrypted = format === 4 ? true : spec.encrypted ?? false;
  const compressed = spec.compressed ?? false;
  if (format === 2 && v2Variant === "r2" && encrypted && compressed) {
    throw new Error(
      'Cannot build format 2 "r2" encrypted and compressed: R2 refused it (use "emergency-doc" or "beta3")',
    );
  }
  if (format <= 2 && spec.compressionFilter !== undefined && spec.compressionFilter !== "gzip") {
    throw new Error(
      `Cannot build format ${format} with filter "${spec.compressionFilter}": gzip only`,
    );
  }
  const names = new Set<string>();
  const qids = new Set<number>([0]);
  for (const vm of spec.vms) {
    if (names.has(vm.name) || qids.has(vm.qid)) {
      throw new Error(`Cannot build a backup: VM "${vm.name}" (qid ${vm.qid}) is not unique`);
    }
    names.add(vm.name);
    qids.add(vm.qid);
  }
  const byName = new Map(spec.vms.map((v) => [v.name, v]));
  for (const vm of spec.vms) {
    if (vm.template !== undefined && byName.get(vm.template)?.kind !== "template") {
      throw new Error(
        `Cannot build a backup: template "${vm.template}" of "${vm.name}" is not a template VM`,
      );
    }
  }
  if (spec.dom0Home && basename(spec.dom0Home.dir) !== spec.dom0Home.user) {
    throw new Error(
      `Cannot back up dom0 home "${spec.dom0Home.dir}": its folder name must be the user "${spec.dom0Home.user}"`,
    );
  }

  const settled = {
    format,
    passphrase: spec.passphrase,
    encrypted,
    compressed,
    v2Variant,
    hmacAlgorithm: spec.hmacAlgorithm ??
      (v2Variant === "beta3" && format === 2 ? "SHA1" : "SHA512"),
    hmacTextStyle: spec.hmacTextStyle ?? "openssl1",
    cryptoAlgorithm: spec.cryptoAlgorithm ?? "aes-256-cbc",
    kdfDigest: spec.kdfDigest ?? "md5",
    compressionFilter: spec.compressionFilter ?? "gzip",
    xform: spec.xform ?? (format === 2 && v2Variant === "beta3" ? "old" : "new"),
    volumeKiB: spec.volumeKiB ?? 100_000,
    chunkBytes: spec.chunkBytes ?? 100 * 1024 * 1024,
    trailingEmptyChunk: spec.trailingEmptyChunk,
    dereference: spec.dereference ?? false,
    scryptLogN: spec.scryptLogN,
    scryptMaxTime: spec.scryptMaxTime,
    v4Tar: spec.v4Tar ?? "gnu",
    zlibEmulation: spec.zlibEmulation ?? false,
    backupId: spec.backupId ?? "20240101T101010-4321",
  } as const;
  const hide = format === 4 || (format !== 1 && (spec.hideVmNames ?? encrypted));

  const items: PlannedItem[] = [];
  const xmlVms: XmlVm[] = [];
  for (const vm of vmOrder(spec.vms, format)) {
    const visiblePath = `${KIND_DIR[vm.kind]}/${vm.name}`;
    const backupPath = hide ? `vm${vm.qid}` : visiblePath;
    const included = vm.included ?? true;
    const vmItems = included ? vm.items ?? await defaultItems(vm, format) : [];
    for (const base of vmItems) {
      const isEmptyMarker = format === 4 && base === "empty" && !await exists(join(vm.dir, base));
      if (!isEmptyMarker && !await exists(join(vm.dir, base))) {
        throw new Error(`Cannot back up "${vm.name}": item "${base}" is not in "${vm.dir}"`);
      }
      items.push({
        owner: vm.name,
        dir: isEmptyMarker ? "" : vm.dir,
        base,
        subdir: `${backupPath}/`,
        isDom0Home: false,
      });
    }
    const volumes: Array<{ name: string; size: number }> = [];
    for (const v of ["private", "root"]) {
      // R4 backs up every save_on_stop volume: list only the ones this backup holds.
      if (format === 4 && !vmItems.includes(`${v}.img`)) continue;
      try {
        volumes.push({ name: v, size: (await Deno.stat(join(vm.dir, `${v}.img`))).size });
      } catch { /* no such volume */ }
    }
    const template = vm.template === undefined ? undefined : byName.get(vm.template)!;
    xmlVms.push({
      qid: vm.qid,
      name: vm.name,
      kind: vm.kind,
      label: vm.label ?? DEFAULT_LABEL[vm.kind],
      ...(template ? { template: { qid: template.qid, name: template.name } } : {}),
      dirPath: `/var/lib/qubes/${visiblePath}`,
      included,
      backupPath,
      backupSize: await apparentSize(
        vmItems.filter((b) => b !== "empty" || format !== 4).map((b) => join(vm.dir, b)),
      ),
      volumes,
    });
  }
  let dom0 = undefined;
  if (spec.dom0Home) {
    items.push({
      owner: "dom0",
      dir: dirname(spec.dom0Home.dir),
      base: spec.dom0Home.user,
      subdir: "dom0-home/",
      isDom0Home: true,
    });
    dom0 = {
      included: true,
      backupPath: `dom0-home/${spec.dom0Home.user}`,
      backupSize: await apparentSize([spec.dom0Home.dir]),
    };
  }
  // An AppVM or NetVM always has a template in Qubes (one with none is a StandaloneVM, which
  // has a root.img): when the spec names none, the system's default template is listed, not
  // backed up, as on a real system.
  const orphans = xmlVms.filter((v) => (v.kind === "app" || v.kind === "net") && !v.template);
  if (orphans.length > 0) {
    const qid = Math.max(0, ...xmlVms.map((v) => v.qid)) + 1;
    const name = "default-template";
    for (const vm of orphans) vm.template = { qid, name };
    xmlVms.push({
      qid,
      name,
      kind: "template",
      label: DEFAULT_LABEL.template,
      dirPath: `/var/lib/qubes/${KIND_DIR.template}/${name}`,
      included: false,
      backupPath: hide ? `vm${qid}` : `${KIND_DIR.template}/${name}`,
      backupSize: 0,
      volumes: [],
    });
  }
  const qubesXml = format === 4 ? core3Xml(xmlVms, dom0) : core2Xml(xmlVms, dom0, format !== 1);
  return { ...settled, items, qubesXml, header: makeHeader(settled) };
}

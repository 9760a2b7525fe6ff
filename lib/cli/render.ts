/**
 * Text for people: sizes and the `info` listing.
 *
 * @module
 */

import type { BackupInfo } from "../commands/mod.ts";

/** `1536` -> `"1.5 KiB"`. */
export function formatSize(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/** The `info` listing as lines of text. */
export function renderInfo(info: BackupInfo): string[] {
  const label = (name: string) => `${name}:`.padEnd(16);
  const lines = [`${label("Format")}${info.format}`];
  const header = info.header;
  if (info.format === 2 && header === undefined) lines.push("Header:       none (R2-beta3)");
  if (header) {
    lines.push(
      `${label("Encrypted")}${
        header.encrypted === undefined ? "unknown" : header.encrypted ? "yes" : "no"
      }`,
    );
    lines.push(
      `${label("Compressed")}${
        header.compressed === undefined
          ? "unknown"
          : header.compressed
          ? `yes${header.compressionFilter ? ` (${header.compressionFilter})` : ""}`
          : "no"
      }`,
    );
    lines.push(`${label("Integrity")}${header.hmacAlgorithm}`);
    if (header.version !== 4 && header.encrypted) {
      lines.push(`${label("Cipher")}${header.cryptoAlgorithm}`);
    }
    if (header.backupId) lines.push(`${label("Backup id")}${header.backupId}`);
  }
  if (info.kdf) {
    lines.push(`${label("Key derivation")}${info.kdf === "md5" ? "MD5 (OpenSSL 1.0)" : "SHA-256"}`);
  }
  lines.push("", "VMs in this backup:");
  const rows = info.vms.map((vm) => [
    vm.name,
    vm.kind,
    vm.template ?? "-",
    vm.label ?? "-",
    vm.backupSize === undefined ? "-" : formatSize(vm.backupSize),
    vm.backupPath ?? "-",
  ]);
  if (info.dom0Home) {
    rows.push(["dom0", "home of " + info.dom0Home.user, "-", "-", "-", info.dom0Home.backupPath]);
  }
  const head = ["NAME", "KIND", "TEMPLATE", "LABEL", "SIZE", "PATH"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [head, ...rows]) {
    lines.push("  " + row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  }
  if (rows.length === 0) lines.push("  (none)");
  return lines;
}

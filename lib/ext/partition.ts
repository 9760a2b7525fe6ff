/**
 * Partition tables: MBR (primary partitions) and GPT, enough to find a Linux file system
 * inside a whole-disk image (an R4 template's root.img, an HVM's disk).
 *
 * @module
 */

import { ImageDamage } from "./damage.ts";
import type { ByteSource } from "./image.ts";

const SECTOR = 512;

/** One partition. */
export interface Partition {
  /** 1-based number, as Linux names it (sda1 = 1). */
  number: number;
  /** Byte offset and size inside the image. */
  start: number;
  size: number;
  /** `"mbr 0x83"` or the GPT type GUID. */
  type: string;
  /** A readable type ("Linux filesystem", "EFI system", ...). */
  typeName: string;
  /** GPT partition name ("" for MBR). */
  name: string;
}

/** A partition table found in an image. */
export interface PartitionTable {
  scheme: "mbr" | "gpt";
  partitions: Partition[];
}

const MBR_TYPES: Record<number, string> = {
  0x05: "extended",
  0x07: "NTFS/exFAT",
  0x0b: "FAT32",
  0x0c: "FAT32",
  0x0f: "extended",
  0x82: "Linux swap",
  0x83: "Linux",
  0x85: "Linux extended",
  0x8e: "Linux LVM",
  0xef: "EFI system",
  0xfd: "Linux RAID",
};

const GPT_TYPES: Record<string, string> = {
  "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
  "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system",
  "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
  "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
  "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
  "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
  "b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM64)",
  "933ac7e1-2eb4-4f13-b844-0e14e2aef915": "Linux home",
};

/** Most partitions a table may list before it is called damaged. */
const MAX_PARTITIONS = 256;

/**
 * Reads the partition table of `source`, or returns undefined when sector 0 holds none.
 *
 * @throws {ImageDamage} When a table is there but damaged.
 */
export async function readPartitionTable(
  source: ByteSource,
): Promise<PartitionTable | undefined> {
  if (source.size < SECTOR * 2) return undefined;
  const mbr = await source.readAt(0, SECTOR);
  if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) return undefined;
  const view = new DataView(mbr.buffer, mbr.byteOffset, SECTOR);
  const primaries: Partition[] = [];
  let protective = false;
  for (let i = 0; i < 4; i++) {
    const at = 0x1be + i * 16;
    const status = mbr[at]!;
    const type = mbr[at + 4]!;
    const first = view.getUint32(at + 8, true);
    const count = view.getUint32(at + 12, true);
    if (type === 0 || count === 0) continue;
    if (status !== 0 && status !== 0x80) return undefined; // not a partition table (a boot sector)
    if (type === 0xee) protective = true;
    primaries.push({
      number: i + 1,
      start: first * SECTOR,
      size: count * SECTOR,
      type: `mbr 0x${type.toString(16).padStart(2, "0")}`,
      typeName: MBR_TYPES[type] ?? "unknown",
      name: "",
    });
  }
  if (protective) return { scheme: "gpt", partitions: await readGpt(source) };
  if (primaries.length === 0) return undefined;
  return { scheme: "mbr", partitions: primaries };
}

async function readGpt(source: ByteSource): Promise<Partition[]> {
  const header = await source.readAt(SECTOR, SECTOR);
  if (new TextDecoder().decode(header.subarray(0, 8)) !== "EFI PART") {
    throw new ImageDamage({
      reason: "damaged",
      detail: "its protective MBR announces a GPT, but sector 1 holds none",
    });
  }
  const view = new DataView(header.buffer, header.byteOffset, SECTOR);
  const entriesLba = Number(view.getBigUint64(0x48, true));
  const count = view.getUint32(0x50, true);
  const entrySize = view.getUint32(0x54, true);
  if (count > MAX_PARTITIONS * 4 || entrySize < 128 || entrySize > 4096 || entrySize % 8 !== 0) {
    throw new ImageDamage({
      reason: "damaged",
      detail: `its GPT header is damaged (${count} entries of ${entrySize} bytes)`,
    });
  }
  const table = await source.readAt(entriesLba * SECTOR, count * entrySize);
  const partitions: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const entry = table.subarray(i * entrySize, (i + 1) * entrySize);
    if (entry.subarray(0, 16).every((byte) => byte === 0)) continue;
    const e = new DataView(entry.buffer, entry.byteOffset, entry.byteLength);
    const first = Number(e.getBigUint64(32, true));
    const last = Number(e.getBigUint64(40, true));
    if (last < first) {
      throw new ImageDamage({
        reason: "damaged",
        detail: `GPT partition ${i + 1} ends before it starts`,
      });
    }
    const type = guid(entry.subarray(0, 16));
    const nameBytes = entry.subarray(56, 128);
    let name = new TextDecoder("utf-16le").decode(nameBytes);
    const nul = name.indexOf("\0");
    if (nul >= 0) name = name.slice(0, nul);
    partitions.push({
      number: i + 1,
      start: first * SECTOR,
      size: (last - first + 1) * SECTOR,
      type,
      typeName: GPT_TYPES[type] ?? "unknown",
      name,
    });
    if (partitions.length > MAX_PARTITIONS) {
      throw new ImageDamage({ reason: "too-large", detail: "its GPT lists too many partitions" });
    }
  }
  return partitions;
}

function guid(bytes: Uint8Array): string {
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = [...bytes.subarray(from, to)];
    if (reverse) part.reverse();
    return part.map((b) => b.toString(16).padStart(2, "0")).join("");
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${
    hex(10, 16, false)
  }`;
}

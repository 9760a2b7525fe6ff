/**
 * One entry of the outer archive, as `tar -cO --posix -C <tmpdir> <name>` wrote it for every
 * file of a Qubes backup (spec section 2.1): a pax `x` header named
 * `<dir>/PaxHeaders/<base>` with `mtime`, `atime` and `ctime` records, the ustar header of the
 * regular file, its data padded to 512 bytes, two zero blocks, and zeros to the 10240-byte
 * record. Each entry is a complete archive of its own; the backup is their concatenation.
 *
 * @module
 */

import { BLOCK, padding, putChecksum, putNumber, RECORD } from "./tar_writer.ts";

const encoder = new TextEncoder();

function putText(block: Uint8Array, offset: number, text: string): void {
  block.set(encoder.encode(text), offset);
}

function ustarBlock(
  name: string,
  typeflag: string,
  size: number,
  mtime: number,
  owner: boolean,
): Uint8Array {
  const block = new Uint8Array(BLOCK);
  putText(block, 0, name);
  putNumber(block, 100, 8, 0o644);
  putNumber(block, 108, 8, 0);
  putNumber(block, 116, 8, 0);
  putNumber(block, 124, 12, size);
  putNumber(block, 136, 12, mtime);
  block[156] = typeflag.charCodeAt(0);
  putText(block, 257, "ustar\x0000");
  if (owner) {
    putText(block, 265, "root");
    putText(block, 297, "root");
    putNumber(block, 329, 8, 0);
    putNumber(block, 337, 8, 0);
  }
  putChecksum(block);
  return block;
}

/** A pax record `"<len> <key>=<value>\n"`, `<len>` counting the whole record. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength + 1;
  while (String(length).length + bodyLength !== length) length++;
  return `${length}${body}`;
}

/**
 * The blocks before an outer entry's data: pax header, pax records, ustar header.
 *
 * @param name Entry name (`backup-header`, `vm5/private.img.000`, ...), ASCII, at most 100
 *   bytes (Qubes names are; longer names get a pax `path` record).
 * @param size Data bytes that follow.
 * @param mtime Seconds since the epoch.
 */
export function outerEntryHead(name: string, size: number, mtime: number): Uint8Array {
  const slash = name.lastIndexOf("/");
  const dir = slash < 0 ? "." : name.slice(0, slash);
  const base = name.slice(slash + 1);
  let records = paxRecord("mtime", String(mtime)) + paxRecord("atime", String(mtime)) +
    paxRecord("ctime", String(mtime));
  if (encoder.encode(name).length > 100) records = paxRecord("path", name) + records;
  const recordBytes = encoder.encode(records);
  const paxName = `${dir}/PaxHeaders/${base}`.slice(0, 100);
  const head = new Uint8Array(BLOCK * 2 + recordBytes.length + padding(recordBytes.length).length);
  head.set(ustarBlock(paxName, "x", recordBytes.length, mtime, false), 0);
  head.set(recordBytes, BLOCK);
  head.set(
    ustarBlock(name.slice(0, 100), "0", size, mtime, true),
    head.length - BLOCK,
  );
  return head;
}

/** What follows `size` data bytes of an entry whose head was `headLength` bytes long. */
export function outerEntryTail(headLength: number, size: number): Uint8Array {
  const pad = padding(size).length;
  const total = headLength + size + pad + 2 * BLOCK;
  return new Uint8Array(pad + 2 * BLOCK + (RECORD - total % RECORD) % RECORD);
}

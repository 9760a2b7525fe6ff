/**
 * Disk images with partition tables (GPT and MBR made by sfdisk, the file system written into
 * its partition by `mke2fs -E offset=`): listed, chosen with --partition, or found alone.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { catFile, getFiles, listFiles } from "../../lib/commands/files.ts";
import { DamagedError, UsageError } from "../../lib/errors.ts";
import { runCli } from "../e2e/_cli.ts";
import { makeImage, makePartitionedDisk } from "./_images.ts";

const SECTOR = 512;

async function text(image: string, path: string, partition?: number): Promise<string> {
  const parts: Uint8Array[] = [];
  await catFile(image, path, (b) => Promise.resolve(void parts.push(b.slice())), {
    ...(partition === undefined ? {} : { partition }),
  });
  return new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p])));
}

Deno.test("files on partitioned disk images (GPT and MBR)", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "ext-partition-test-" });
  try {
    const src = join(work, "src");
    await Deno.mkdir(join(src, "etc"), { recursive: true });
    await Deno.writeTextFile(join(src, "etc", "hostname"), "template\n");

    await t.step("GPT: BIOS boot, EFI, Linux root", async () => {
      const disk = join(work, "gpt.img");
      await makePartitionedDisk(
        disk,
        [
          "label: gpt",
          'start=2048, size=4096, type=21686148-6449-6E6F-744E-656564454649, name="bios"',
          'start=6144, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="efi"',
          'start=14336, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"',
        ].join("\n"),
        14336,
        src,
      );
      const listing = await listFiles(disk, "/");
      assert.equal(listing.kind, "partitions");
      if (listing.kind !== "partitions") return;
      assert.equal(listing.scheme, "gpt");
      assert.deepEqual(
        listing.partitions.map((p) => [p.number, p.start, p.typeName, p.name, p.ext]),
        [
          [1, 2048 * SECTOR, "BIOS boot", "bios", false],
          [2, 6144 * SECTOR, "EFI system", "efi", false],
          [3, 14336 * SECTOR, "Linux filesystem", "root", true],
        ],
      );
      // get and cat use the only ext partition; ls lists it with --partition 3.
      assert.equal(await text(disk, "/etc/hostname"), "template\n");
      const out = join(work, "out");
      await getFiles(disk, ["/etc"], { output: out });
      assert.equal(await Deno.readTextFile(join(out, "etc", "hostname")), "template\n");
      const inside = await listFiles(disk, "/etc", { partition: 3 });
      assert.equal(inside.kind, "entries");
      await assert.rejects(
        listFiles(disk, "/", { partition: 2 }),
        (e: Error) =>
          e instanceof DamagedError && e.message.includes("not an ext2/3/4 file system"),
      );
      await assert.rejects(
        listFiles(disk, "/", { partition: 9 }),
        (e: Error) =>
          e instanceof UsageError &&
          e.message === `Cannot open partition 9 of "${disk}": it has partitions 1, 2, 3`,
      );
      const cli = await runCli(["files", "ls", disk]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /GPT partition table; choose one with --partition N/);
      assert.match(cli.stdout, / 3 +[0-9.]+ MiB +Linux filesystem "root" +\(ext file system\)/);
    });

    await t.step("MBR: FAT, then Linux", async () => {
      const disk = join(work, "mbr.img");
      await makePartitionedDisk(
        disk,
        "label: dos\nstart=2048, size=8192, type=c\nstart=10240, type=83\n",
        10240,
        src,
      );
      const listing = await listFiles(disk, "/");
      assert.equal(listing.kind, "partitions");
      if (listing.kind !== "partitions") return;
      assert.equal(listing.scheme, "mbr");
      assert.deepEqual(listing.partitions.map((p) => [p.number, p.typeName, p.ext]), [
        [1, "FAT32", false],
        [2, "Linux", true],
      ]);
      assert.equal(await text(disk, "etc/hostname", 2), "template\n");
    });

    await t.step("a bare file system whose sector 0 still holds a protective MBR", async () => {
      // What an old GPT leaves when only the file system was written over the disk: sector 0
      // announces a GPT (type 0xEE) that sector 1 no longer holds. `mount` uses the file
      // system at byte 0; so do we (the table was read first, and refused the image).
      const image = join(work, "stale-pmbr.img");
      await makeImage(image, src, 8 * 1024 * 1024, ["-t", "ext4"]);
      const file = await Deno.open(image, { read: true, write: true });
      try {
        const sector = new Uint8Array(SECTOR);
        await file.read(sector);
        const entry = new DataView(sector.buffer, 0x1be, 16);
        entry.setUint8(4, 0xee);
        entry.setUint32(8, 1, true);
        entry.setUint32(12, 8 * 2048 - 1, true);
        sector[510] = 0x55;
        sector[511] = 0xaa;
        await file.seek(0, Deno.SeekMode.Start);
        await file.write(sector);
      } finally {
        file.close();
      }
      assert.equal(await text(image, "/etc/hostname"), "template\n");
      const listing = await listFiles(image, "/etc");
      assert.equal(listing.kind, "entries");
      // Asking for a partition still reads the table, and says what is wrong with it.
      await assert.rejects(
        listFiles(image, "/", { partition: 1 }),
        (e: Error) =>
          e.message.includes("its protective MBR announces a GPT, but sector 1 holds none"),
      );
      const cli = await runCli(["files", "cat", image, "/etc/hostname"]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(cli.stdout, "template\n");
    });
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});

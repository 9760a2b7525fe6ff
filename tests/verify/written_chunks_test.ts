import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { BackupWriter } from "../../lib/convert/backup_writer.ts";
import { verifyBackup } from "../../lib/commands/mod.ts";
import { DamagedError } from "../../lib/errors.ts";
import { WrittenChunks } from "../../lib/verify/mod.ts";
import { cutBytes, pseudoRandomBytes, runTool } from "../crypto/_tools.ts";

const PASS = "written chunks ✓";
const encoder = new TextEncoder();

Deno.test("a written chunk is compared byte for byte with what its writer hashed", async (t) => {
  const bytes = pseudoRandomBytes(300_000, 7);
  const held = () => {
    const written = new WrittenChunks();
    written.put("vm1/private.img.001", "ab".repeat(64), cutBytes(bytes, 65_536));
    return written;
  };
  const compare = (written: WrittenChunks, read: Uint8Array[]) => {
    const comparison = written.take("vm1/private.img.001");
    ok(comparison !== undefined);
    for (const piece of read) comparison.update(piece);
    return comparison.finish();
  };
  const damaged = (detail: RegExp) => (error: unknown) =>
    error instanceof DamagedError && error.reason === "damaged" &&
    error.message.includes('"vm1/private.img.001"') && detail.test(error.message);

  await t.step(
    "the same bytes, cut elsewhere: the writer's digest and the pieces read",
    async () => {
      const read = cutBytes(bytes, 100_000);
      const done = await compare(held(), read);
      assertEquals(done.hex, "ab".repeat(64));
      ok(done.pieces.length === read.length && done.pieces.every((piece, i) => piece === read[i]));
    },
  );
  await t.step("a byte that differs is named", async () => {
    const read = bytes.slice();
    read[123_457]! ^= 0x01;
    await rejects(
      compare(held(), cutBytes(read, 100_000)),
      damaged(/byte 123457 read back differs/),
    );
  });
  await t.step("fewer or more bytes than were written", async () => {
    await rejects(
      compare(held(), cutBytes(bytes.subarray(0, 299_984), 100_000)),
      damaged(/299984 bytes were read back, 300000 were written/),
    );
    const longer = new Uint8Array(300_016);
    longer.set(bytes);
    await rejects(
      compare(held(), cutBytes(longer, 100_000)),
      damaged(/more than the 300000 bytes written were read back/),
    );
  });
  await t.step("a chunk is taken once; the next one lets go of one not taken", () => {
    const written = held();
    ok(written.take("vm1/private.img.000") === undefined);
    written.put("vm1/private.img.002", "cd".repeat(64), cutBytes(bytes, 65_536));
    ok(written.take("vm1/private.img.001") === undefined, "let go: the reader hashes it");
    ok(written.take("vm1/private.img.002") !== undefined);
    ok(written.take("vm1/private.img.002") === undefined);
    written.close();
    written.put("vm1/private.img.003", "ef".repeat(64), cutBytes(bytes, 65_536));
    ok(written.take("vm1/private.img.003") === undefined, "closed: nothing is kept");
  });
});

Deno.test("the reader checks a written chunk's .hmac against the writer's digest", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "qr-written-" });
  try {
    const path = `${dir}/backup`;
    const file = await Deno.open(path, { write: true, createNew: true });
    const writer = new BackupWriter(file, {
      passphrase: encoder.encode(PASS),
      encrypt: true,
      compress: true,
      chunkSize: 64 * 1024,
    });
    try {
      await writer.writeHeader();
      const qubesXml = encoder.encode("<QubesVmCollection/>\n");
      await writer.writeItem(
        "qubes.xml",
        ReadableStream.from([await tarOf("qubes.xml", qubesXml)]),
      );
      const image = pseudoRandomBytes(200_000, 3);
      await writer.writeItem(
        "vm1/private.img",
        ReadableStream.from([await tarOf("vm1/private.img", image)]),
      );
    } finally {
      writer.close();
      file.close();
    }
    // Chunk 001 of the image and its digest, as the file holds them.
    await runTool("tar", ["-i", "-xf", path, "-C", dir]); // entries are archives of their own
    const chunk = await Deno.readFile(`${dir}/vm1/private.img.001`);
    const hex = (await Deno.readTextFile(`${dir}/vm1/private.img.001.hmac`)).trim().split("= ")[1]!;
    const verify = (held: Uint8Array, digest: string) => {
      const written = new WrittenChunks();
      written.put("vm1/private.img.001", digest, cutBytes(held, 10_000));
      return verifyBackup(path, {
        passphrase: () => Promise.resolve(encoder.encode(PASS)),
        writtenChunks: written,
      }).then((summary) => ({ summary, left: written.take("vm1/private.img.001") }));
    };

    await t.step("held as written: verified, and the chunk was taken", async () => {
      const { summary, left } = await verify(chunk, hex);
      assertEquals(summary.format, 3);
      ok(left === undefined);
    });
    await t.step("held bytes that differ from the file's: damaged", async () => {
      const other = chunk.slice();
      other[40_000]! ^= 0x80;
      await rejects(
        verify(other, hex),
        (error) =>
          error instanceof DamagedError && /byte 40000 read back differs/.test(error.message),
      );
    });
    await t.step("a digest other than the .hmac entry's: HMAC mismatch", async () => {
      await rejects(
        verify(chunk, "00".repeat(64)),
        (error) => error instanceof DamagedError && error.reason === "hmac-mismatch",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A GNU tar archive holding `bytes` as `name` (the real tool writes it). */
async function tarOf(name: string, bytes: Uint8Array): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "qr-written-tar-" });
  try {
    await Deno.mkdir(`${dir}/${name.split("/").slice(0, -1).join("/") || "."}`, {
      recursive: true,
    });
    await Deno.writeFile(`${dir}/${name}`, bytes);
    return await runTool("tar", ["-cf", "-", "-C", dir, name]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

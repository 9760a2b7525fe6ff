import assert from "node:assert/strict";
import { DamagedError, IncompleteError, OutputError } from "../../lib/errors.ts";
import { messageWithHint } from "../../lib/cli/hints.ts";
import {
  type OutputFile,
  TreeWriter,
  type TreeWriterOptions,
  writeTree,
} from "../../lib/output/tree_writer.ts";
import { VirtualFs } from "../../lib/output/writer_fs.ts";
import type { TarEntry, TarEvent } from "../../lib/tar/events.ts";
import { canMountTmpfs } from "../support/tmpfs.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** An `entry` event with sensible defaults. */
function entry(name: string, fields: Partial<TarEntry> = {}): TarEvent {
  const kind = fields.kind ?? "file";
  const typeflag = { file: "0", directory: "5", symlink: "2", hardlink: "1", other: "3" }[kind];
  return {
    type: "entry",
    entry: {
      name,
      kind,
      typeflag,
      mode: kind === "directory" ? 0o755 : 0o644,
      mtime: 1_400_000_000,
      linkname: "",
      size: 0,
      sparse: false,
      ...fields,
    },
  };
}

/** The events of one regular member: entry, data at the given offsets, end. */
function file(
  name: string,
  size: number,
  pieces: [number, Uint8Array][] = [],
  fields: Partial<TarEntry> = {},
): TarEvent[] {
  return [
    entry(name, { size, sparse: pieces.length > 1, ...fields }),
    ...pieces.map(([offset, bytes]): TarEvent => ({ type: "data", offset, bytes })),
    { type: "end" },
  ];
}

function member(name: string, fields: Partial<TarEntry>): TarEvent[] {
  return [entry(name, fields), { type: "end" }];
}

/** `length` bytes of a pattern that differs with `seed`. */
function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff || 1;
  return out;
}

async function restore(
  root: string,
  events: TarEvent[],
  options: Partial<TreeWriterOptions> = {},
): Promise<TreeWriter> {
  const writer = new TreeWriter({ root, mapName: (name) => name, ...options });
  await ReadableStream.from(events).pipeTo(writer);
  return writer;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tree_writer_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every name under `dir`, recursively, sorted, as relative paths. */
async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const names: string[] = [];
  for await (const item of Deno.readDir(dir)) {
    const rel = prefix + item.name;
    names.push(rel);
    if (item.isDirectory) names.push(...await listTree(`${dir}/${item.name}`, `${rel}/`));
  }
  return names.sort();
}

function isError(type: new (...args: never[]) => Error, message: string) {
  return (error: unknown) => {
    assert(error instanceof type, `expected ${type.name}, got ${error}`);
    assert.deepEqual(error.message, message);
    return true;
  };
}

/** An "it exists" OutputError, as the user reads it: with the hint the CLI adds. */
function isExistsError(message: string) {
  return (error: unknown) => {
    assert(error instanceof OutputError, `expected OutputError, got ${error}`);
    assert.equal(error.reason, "exists");
    assert.equal(messageWithHint(error), message);
    return true;
  };
}

Deno.test("TreeWriter restores a sparse file with holes", async () => {
  await withTempDir(async (root) => {
    // The spec §8.5 example map, in a 16 MiB file.
    const size = 16 * MiB;
    const pieces: [number, Uint8Array][] = [
      [4096, bytes(4096, 1)],
      [196608, bytes(307200, 2)],
      [8 * MiB, bytes(4096, 3)],
      [size - 4096, bytes(4096, 4)],
    ];
    const writer = await restore(root, file("vm5/private.img", size, pieces));
    assert.deepEqual(writer.restored, ["vm5/private.img"]);
    const expected = new Uint8Array(size);
    for (const [offset, data] of pieces) expected.set(data, offset);
    const actual = await Deno.readFile(`${root}/vm5/private.img`);
    assert.deepEqual(actual.length, size);
    assert(actual.every((byte, i) => byte === expected[i]), "restored bytes differ");
    const info = await Deno.stat(`${root}/vm5/private.img`);
    assert.deepEqual(info.size, size);
    assert(info.blocks! * 512 < 1 * MiB, `holes were filled: ${info.blocks} blocks`);
  });
});

Deno.test("TreeWriter restores a file ending in a hole at its exact size", async () => {
  await withTempDir(async (root) => {
    const size = 10 * MiB + 123;
    await restore(root, file("f", size, [[0, bytes(4096)], [size, new Uint8Array(0)]]));
    const info = await Deno.stat(`${root}/f`);
    assert.deepEqual(info.size, size);
    assert(info.blocks! * 512 <= 64 * KiB, `trailing hole was filled: ${info.blocks} blocks`);
    const data = await Deno.readFile(`${root}/f`);
    assert.deepEqual(data.subarray(0, 4096), bytes(4096));
    assert(data.subarray(4096).every((byte) => byte === 0));
  });
});

Deno.test("TreeWriter restores an empty file", async () => {
  await withTempDir(async (root) => {
    const done: [string, number][] = [];
    await restore(root, file("empty", 0), { onFileDone: (path, size) => done.push([path, size]) });
    assert.deepEqual((await Deno.stat(`${root}/empty`)).size, 0);
    assert.deepEqual(done, [["empty", 0]]);
  });
});

Deno.test("TreeWriter writes at offsets beyond 4 GiB and keeps the rest a hole", async () => {
  await withTempDir(async (root) => {
    const data = bytes(1 * MiB, 9);
    await restore(root, file("big.img", 6 * GiB, [[5 * GiB, data]]));
    const info = await Deno.stat(`${root}/big.img`);
    assert.deepEqual(info.size, 6 * GiB);
    assert(info.blocks! * 512 <= 2 * MiB, `not sparse: ${info.blocks} blocks`);
    using f = await Deno.open(`${root}/big.img`);
    await f.seek(5 * GiB - 16, Deno.SeekMode.Start);
    const back = new Uint8Array(data.length + 32);
    let got = 0;
    while (got < back.length) got += (await f.read(back.subarray(got)))!;
    assert.deepEqual(back.subarray(0, 16), new Uint8Array(16));
    assert.deepEqual(back.subarray(16, 16 + data.length), data);
    assert.deepEqual(back.subarray(16 + data.length), new Uint8Array(16));
  });
});

Deno.test("TreeWriter gathers small pieces into large writes", async () => {
  await withTempDir(async (root) => {
    const calls = { write: 0, seek: 0 };
    const openFile = async (path: string, options: Deno.OpenOptions): Promise<OutputFile> => {
      const real = await Deno.open(path, options);
      return {
        write: (p) => (calls.write++, real.write(p)),
        seek: (offset, whence) => (calls.seek++, real.seek(offset, whence)),
        truncate: (len) => real.truncate(len),
        utime: (a, m) => real.utime(a, m),
        close: () => real.close(),
      };
    };
    const all = bytes(2 * MiB + 3 * MiB);
    const pieces: [number, Uint8Array][] = [];
    for (let at = 0; at < 2 * MiB; at += 512) pieces.push([at, all.subarray(at, at + 512)]);
    pieces.push([2 * MiB, all.subarray(2 * MiB)]); // one large piece goes straight through
    pieces.push([8 * MiB, all.subarray(0, 512)]); // after a hole: one seek
    await restore(root, file("f", 9 * MiB, pieces), { openFile });
    assert.deepEqual(calls, { write: 4, seek: 1 });
    const back = await Deno.readFile(`${root}/f`);
    assert.deepEqual(back.subarray(0, all.length), all);
    assert.deepEqual(back.subarray(8 * MiB, 8 * MiB + 512), all.subarray(0, 512));
  });
});

Deno.test("TreeWriter restores nested directories and unicode names", async () => {
  await withTempDir(async (root) => {
    const name = "dom0-home/alice/Документы/naïve 文件 🎉.txt";
    const writer = await restore(root, [
      ...member("dom0-home/", { kind: "directory" }),
      ...member("dom0-home/alice/", { kind: "directory", mode: 0o700 }),
      ...file(name, 5, [[0, new TextEncoder().encode("hello")]]),
      ...member("dom0-home/alice/", { kind: "directory", mode: 0o700 }), // repeated: fine
    ]);
    assert.deepEqual(writer.restored, ["dom0-home", "dom0-home/alice", name]);
    assert.deepEqual(await Deno.readTextFile(`${root}/${name}`), "hello");
    assert.deepEqual(await listTree(root), [
      "dom0-home",
      "dom0-home/alice",
      "dom0-home/alice/Документы",
      `${name}`,
    ]);
  });
});

Deno.test("TreeWriter applies file modes without setuid, and mtimes", async () => {
  await withTempDir(async (root) => {
    await restore(root, [
      ...file("bin/tool", 3, [[0, bytes(3)]], { mode: 0o104755, mtime: 1_500_000_000 }),
      ...file("secret", 1, [[0, bytes(1)]], { mode: 0o600, mtime: 1_300_000_000 }),
    ]);
    const tool = await Deno.stat(`${root}/bin/tool`);
    assert.deepEqual(tool.mode! & 0o7777, 0o755);
    assert.deepEqual(tool.mtime!.getTime(), 1_500_000_000_000);
    const secret = await Deno.stat(`${root}/secret`);
    assert.deepEqual(secret.mode! & 0o7777, 0o600);
    assert.deepEqual(secret.mtime!.getTime(), 1_300_000_000_000);
  });
});

Deno.test("TreeWriter applies directory modes and mtimes when the stream closes", async () => {
  await withTempDir(async (root) => {
    await restore(root, [
      ...member("ro/", { kind: "directory", mode: 0o2555, mtime: 1_200_000_000 }),
      ...member("ro/sub/", { kind: "directory", mode: 0o750, mtime: 1_100_000_000 }),
      ...file("ro/sub/f", 1, [[0, bytes(1)]]),
      ...file("ro/g", 1, [[0, bytes(1)]]),
    ]);
    const ro = await Deno.stat(`${root}/ro`);
    assert.deepEqual(ro.mode! & 0o7777, 0o555);
    assert.deepEqual(ro.mtime!.getTime(), 1_200_000_000_000);
    const sub = await Deno.stat(`${root}/ro/sub`);
    assert.deepEqual(sub.mode! & 0o7777, 0o750);
    assert.deepEqual(sub.mtime!.getTime(), 1_100_000_000_000);
    await Deno.chmod(`${root}/ro`, 0o755); // so the temp dir can be removed without root
  });
});

Deno.test("TreeWriter creates symlinks as stored and never follows them", async () => {
  await withTempDir(async (dir) => {
    const root = `${dir}/out`;
    await Deno.mkdir(`${dir}/outside`);
    await Deno.writeTextFile(`${dir}/outside/target`, "untouched");
    await restore(root, [
      // Spec T15: absolute icon symlink, kept as-is.
      ...member("vm5/icon.png", { kind: "symlink", linkname: "/usr/share/qubes/icons/green.png" }),
      ...member("vm5/lib", { kind: "symlink", linkname: "lib64" }),
      ...member("vm5/escape", { kind: "symlink", linkname: `${dir}/outside/target` }),
    ]);
    assert.deepEqual(
      await Deno.readLink(`${root}/vm5/icon.png`),
      "/usr/share/qubes/icons/green.png",
    );
    assert.deepEqual(await Deno.readLink(`${root}/vm5/lib`), "lib64");
    assert.deepEqual(await Deno.readLink(`${root}/vm5/escape`), `${dir}/outside/target`);
    // A later file of the same name does not write through the link, with or without force.
    await assert.rejects(
      () => restore(root, file("vm5/escape", 3, [[0, bytes(3)]])),
      isExistsError('Cannot restore "vm5/escape": it exists (use --force to replace it)'),
    );
    await restore(root, file("vm5/escape", 3, [[0, bytes(3)]]), { force: true });
    assert((await Deno.lstat(`${root}/vm5/escape`)).isFile);
    assert.deepEqual(await Deno.readTextFile(`${dir}/outside/target`), "untouched");
    assert.deepEqual(await listTree(root), ["vm5", "vm5/escape", "vm5/icon.png", "vm5/lib"]);
  });
});

Deno.test("TreeWriter restores a hard link to a file restored before it", async () => {
  await withTempDir(async (root) => {
    await restore(root, [
      ...file("a/one", 4, [[0, bytes(4)]]),
      ...member("b/two", { kind: "hardlink", linkname: "a/one" }),
    ]);
    const one = await Deno.stat(`${root}/a/one`);
    const two = await Deno.stat(`${root}/b/two`);
    assert.deepEqual(two.ino, one.ino);
    assert.deepEqual(one.nlink, 2);
  });
});

Deno.test("TreeWriter refuses hard links to anything not restored in this run", async (t) => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/existing`, "x");
    for (const linkname of ["existing", "missing", "/etc/passwd", "../x"]) {
      await t.step(linkname, async () => {
        await assert.rejects(
          () => restore(root, member("link", { kind: "hardlink", linkname })),
          (error: unknown) => error instanceof DamagedError,
        );
      });
    }
    assert.deepEqual(await listTree(root), ["existing"]);
  });
});

Deno.test("TreeWriter links a hard link to a kept file (--skip-existing), and to nothing else", async (t) => {
  await withTempDir(async (root) => {
    await Deno.mkdir(`${root}/a`);
    await Deno.writeTextFile(`${root}/a/one`, "kept");
    await Deno.symlink("one", `${root}/a/sym`);
    await Deno.symlink(root, `${root}/via`);
    // The writer as restore --skip-existing drives it: members whose path exists are kept.
    const skip = (names: string[]) => ({
      mapName: (member: string) => names.includes(member) ? undefined : member,
      kept: (member: string) => names.includes(member) ? member : undefined,
    });
    await t.step("a regular file: the link is made to it", async () => {
      await restore(
        root,
        [
          ...file("a/one", 4, [[0, bytes(4)]]),
          ...member("b/two", { kind: "hardlink", linkname: "a/one" }),
        ],
        skip(["a/one"]),
      );
      assert.equal((await Deno.stat(`${root}/b/two`)).ino, (await Deno.stat(`${root}/a/one`)).ino);
      assert.equal(await Deno.readTextFile(`${root}/a/one`), "kept");
    });
    await t.step("a symbolic link: refused", async () => {
      await assert.rejects(
        () =>
          restore(
            root,
            member("b/three", { kind: "hardlink", linkname: "a/sym" }),
            skip(["a/sym"]),
          ),
        (error: unknown) => error instanceof DamagedError,
      );
    });
    await t.step("a file reached through a link in the output folder: refused", async () => {
      await assert.rejects(
        () =>
          restore(
            root,
            member("b/four", { kind: "hardlink", linkname: "via/a/one" }),
            skip(["via/a/one"]),
          ),
        isError(
          OutputError,
          'Cannot restore "via/a/one": "via" in the output folder is a symbolic link (nothing is written through links)',
        ),
      );
    });
    assert.deepEqual(await listTree(root), ["a", "a/one", "a/sym", "b", "b/two", "via"]);
  });
});

Deno.test("TreeWriter stopped part way gives the folders it made their modes, owner-writable", async (t) => {
  for (const stageFolders of [false, true]) {
    await t.step(
      stageFolders ? "folders built under temporary names (files get)" : "restore",
      async () => {
        await withTempDir(async (root) => {
          const events = [
            ...member("ro", { kind: "directory", mode: 0o555, mtime: 1_300_000_000 }),
            ...member("ro/sub", { kind: "directory", mode: 0o750 }),
            ...file("ro/sub/f", 3, [[0, bytes(3)]]),
          ];
          await assert.rejects(
            () =>
              writeTree({ root, mapName: (name) => name, stageFolders }, async (write) => {
                for (const event of events) await write(event);
                throw new Error("stopped");
              }),
            /stopped/,
          );
          // A later run (--skip-existing) can still write into them; the complete file stays.
          assert.equal((await Deno.stat(`${root}/ro`)).mode! & 0o777, 0o755);
          assert.equal((await Deno.stat(`${root}/ro/sub`)).mode! & 0o777, 0o750);
          assert.equal((await Deno.stat(`${root}/ro`)).mtime!.getTime(), 1_300_000_000_000);
          assert.deepEqual(await Deno.readFile(`${root}/ro/sub/f`), bytes(3));
          assert.deepEqual(await listTree(root), ["ro", "ro/sub", "ro/sub/f"]);
        });
      },
    );
  }
  await t.step("a write that fails (the stream is not aborted then)", async () => {
    await withTempDir(async (root) => {
      await Deno.writeTextFile(`${root}/there`, "mine");
      await assert.rejects(
        () =>
          restore(root, [
            ...member("ro", { kind: "directory", mode: 0o555 }),
            ...file("ro/f", 3, [[0, bytes(3)]]),
            ...file("there", 1, [[0, bytes(1)]]),
          ]),
        OutputError,
      );
      assert.equal((await Deno.stat(`${root}/ro`)).mode! & 0o777, 0o755);
      assert.equal(await Deno.readTextFile(`${root}/there`), "mine");
    });
  });
});

Deno.test("TreeWriter does not overwrite an existing file without force", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(`${root}/work`);
    await Deno.writeTextFile(`${root}/work/private.img`, "original");
    await assert.rejects(
      () => restore(root, file("work/private.img", 3, [[0, bytes(3)]])),
      isExistsError('Cannot restore "work/private.img": it exists (use --force to replace it)'),
    );
    assert.deepEqual(await Deno.readTextFile(`${root}/work/private.img`), "original");
    assert.deepEqual(await listTree(root), ["work", "work/private.img"]);
  });
});

Deno.test("TreeWriter replaces an existing file with force", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/f`, "original, longer than the new one");
    await restore(root, file("f", 3, [[0, new TextEncoder().encode("new")]]), { force: true });
    assert.deepEqual(await Deno.readTextFile(`${root}/f`), "new");
    // A symlink member replaces the file itself too (by rename), nothing is written through.
    await restore(root, member("f", { kind: "symlink", linkname: "/etc/passwd" }), { force: true });
    assert.deepEqual(await Deno.readLink(`${root}/f`), "/etc/passwd");
    assert.deepEqual(await listTree(root), ["f"]);
  });
});

Deno.test("TreeWriter never replaces a directory, even with force", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(`${root}/d`);
    // Without force too, it is told as in the way: --force and --skip-existing would not help.
    for (const force of [true, false]) {
      await assert.rejects(
        () => restore(root, file("d", 1, [[0, bytes(1)]]), { force }),
        isError(OutputError, 'Cannot restore "d": a directory is in the way'),
      );
      await assert.rejects(
        () => restore(root, member("d", { kind: "symlink", linkname: "x" }), { force }),
        isError(OutputError, 'Cannot restore "d": a directory is in the way'),
      );
    }
    assert((await Deno.lstat(`${root}/d`)).isDirectory);
  });
});

Deno.test("TreeWriter never puts a folder where a file is, even with force", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/d`, "mine");
    for (const force of [true, false]) {
      await assert.rejects(
        () => restore(root, member("d", { kind: "directory" }), { force }),
        isError(OutputError, 'Cannot restore "d": something that is not a directory is in the way'),
      );
    }
    assert.equal(await Deno.readTextFile(`${root}/d`), "mine");
  });
});

Deno.test("VirtualFs reading through sees the real folder and never writes to it", async () => {
  await withTempDir(async (root) => {
    await Deno.mkdir(`${root}/d`);
    await Deno.writeTextFile(`${root}/f`, "mine");
    await Deno.symlink("/nowhere", `${root}/l`);
    const fs = new VirtualFs({ readThrough: true });
    assert.deepEqual(await fs.lstat(`${root}/d`), {
      isFile: false,
      isDirectory: true,
      isSymlink: false,
    });
    assert.equal((await fs.lstat(`${root}/l`))?.isSymlink, true);
    assert.equal(await fs.lstat(`${root}/f/below`), undefined);
    await assert.rejects(() => fs.mkdir(`${root}/f`), Deno.errors.AlreadyExists);
    await assert.rejects(() => fs.mkdir(`${root}/f/x`), Deno.errors.NotFound);
    await fs.mkdir(`${root}/d/new`);
    await fs.symlink("x", `${root}/d/new/link`);
    assert.equal((await fs.lstat(`${root}/d/new`))?.isDirectory, true);
    // Removed here: gone here, still on disk.
    await fs.remove(`${root}/f`);
    assert.equal(await fs.lstat(`${root}/f`), undefined);
    await fs.removeTree(`${root}/d`);
    assert.equal(await fs.lstat(`${root}/d/new/link`), undefined);
    assert.deepEqual(await listTree(root), ["d", "f", "l"]);
    // Without reading through, it starts empty (verify).
    assert.equal(await new VirtualFs().lstat(`${root}/d`), undefined);
  });
});

Deno.test("TreeWriter refuses to write through a symlink parent", async () => {
  await withTempDir(async (dir) => {
    const root = `${dir}/out`;
    await Deno.mkdir(`${dir}/etc`);
    const events = [
      ...member("a", { kind: "symlink", linkname: `${dir}/etc` }),
      ...file("a/passwd", 4, [[0, bytes(4)]]),
    ];
    await assert.rejects(
      () => restore(root, events),
      isError(DamagedError, 'Cannot restore "a/passwd": "a" is a symbolic link'),
    );
    // The same with a relative link, a deeper path, and force.
    await assert.rejects(
      () =>
        restore(root, [
          ...member("b", { kind: "symlink", linkname: "../etc" }),
          ...file("b/x/y", 4, [[0, bytes(4)]]),
        ], { force: true }),
      isError(DamagedError, 'Cannot restore "b/x/y": "b" is a symbolic link'),
    );
    assert.deepEqual(await listTree(`${dir}/etc`), []);
    assert.deepEqual(await listTree(root), ["a", "b"]);
  });
});

Deno.test("TreeWriter rejects unsafe mapped names before writing anything", async (t) => {
  await withTempDir(async (root) => {
    for (const name of ["../x", "/abs", "vm5/../../x"]) {
      await t.step(name, async () => {
        await assert.rejects(
          () => restore(root, file(name, 1, [[0, bytes(1)]])),
          isError(DamagedError, `Cannot restore "${name}": unsafe path`),
        );
      });
    }
    assert.deepEqual(await listTree(root), []);
  });
});

Deno.test("TreeWriter skips members mapped to undefined and members of other kinds", async () => {
  await withTempDir(async (root) => {
    const skipped: string[] = [];
    const writer = await restore(root, [
      ...file("other-vm/private.img", 4, [[0, bytes(4)]]),
      ...member("vm5/dev", { kind: "other", typeflag: "3" }),
      ...file("vm5/keep", 4, [[0, bytes(4)]]),
    ], {
      mapName: (name) => name.startsWith("vm5/") ? name : undefined,
      onSkipped: (path) => skipped.push(path),
    });
    assert.deepEqual(writer.restored, ["vm5/keep"]);
    assert.deepEqual(skipped, ["vm5/dev"]);
    assert.deepEqual(await listTree(root), ["vm5", "vm5/keep"]);
  });
});

Deno.test("TreeWriter maps names through mapName", async () => {
  await withTempDir(async (root) => {
    await restore(root, file("vm3/./root.img", 2, [[0, bytes(2)]]), {
      mapName: (name) => name.replace(/^vm3\//, "my-template/"),
    });
    assert.deepEqual(await listTree(root), ["my-template", "my-template/root.img"]);
  });
});

Deno.test("TreeWriter removes the partial file when the stream is aborted mid-file", async () => {
  await withTempDir(async (root) => {
    const source = new ReadableStream<TarEvent>({
      start(controller) {
        controller.enqueue(entry("vm5/private.img", { size: 4 * MiB }));
        controller.enqueue({ type: "data", offset: 0, bytes: bytes(2 * MiB) });
      },
      pull(controller) {
        controller.error(new DamagedError("upstream failed"));
      },
    });
    const writer = new TreeWriter({ root, mapName: (name) => name });
    await assert.rejects(() => source.pipeTo(writer), isError(DamagedError, "upstream failed"));
    assert.deepEqual(await listTree(root), ["vm5"]);
  });
});

Deno.test("TreeWriter removes the partial file when aborted directly", async () => {
  await withTempDir(async (root) => {
    const writer = new TreeWriter({ root, mapName: (name) => name });
    const w = writer.getWriter();
    await w.write(entry("f", { size: 10 }));
    await w.write({ type: "data", offset: 0, bytes: bytes(5) });
    assert.deepEqual(await listTree(root), [".f.qubes-recover-partial"]);
    await w.abort(new Error("stop"));
    assert.deepEqual(await listTree(root), []);
  });
});

Deno.test("TreeWriter reports a stream that ends inside a file as incomplete", async () => {
  await withTempDir(async (root) => {
    await assert.rejects(
      () => restore(root, [entry("f", { size: 10 }), { type: "data", offset: 0, bytes: bytes(5) }]),
      isError(IncompleteError, 'Cannot restore "f": the backup ends inside it'),
    );
    assert.deepEqual(await listTree(root), []);
  });
});

Deno.test("TreeWriter rejects data beyond a member's size", async () => {
  await withTempDir(async (root) => {
    await assert.rejects(
      () => restore(root, file("f", 10, [[8, bytes(4)]])),
      isError(DamagedError, 'Cannot restore "f": data at offset 8 lies beyond its size 10'),
    );
    assert.deepEqual(await listTree(root), []);
  });
});

Deno.test("TreeWriter replaces a partial file left by an interrupted run", async () => {
  await withTempDir(async (root) => {
    await Deno.writeTextFile(`${root}/.f.qubes-recover-partial`, "stale");
    await restore(root, file("f", 2, [[0, new TextEncoder().encode("ok")]]));
    assert.deepEqual(await listTree(root), ["f"]);
    assert.deepEqual(await Deno.readTextFile(`${root}/f`), "ok");
  });
});

Deno.test("TreeWriter creates a missing root", async () => {
  await withTempDir(async (dir) => {
    await restore(`${dir}/a/b/out/`, file("f", 1, [[0, bytes(1)]]));
    assert.deepEqual(await listTree(dir), ["a", "a/b", "a/b/out", "a/b/out/f"]);
  });
});

Deno.test("TreeWriter turns ENOSPC into an OutputError and removes the partial file", async () => {
  await withTempDir(async (root) => {
    // The temporary file is really created; its writes go to /dev/full, which fails with ENOSPC.
    const openFile = async (path: string, options: Deno.OpenOptions): Promise<OutputFile> => {
      (await Deno.open(path, options)).close();
      return await Deno.open("/dev/full", { write: true });
    };
    await assert.rejects(
      () => restore(root, file("vm5/private.img", 2 * MiB, [[0, bytes(2 * MiB)]]), { openFile }),
      isError(OutputError, 'Cannot write "vm5/private.img": no space left on device'),
    );
    assert.deepEqual(await listTree(root), ["vm5"]);
  });
});

/**
 * Restore one 1 MiB file "vm5/private.img" into a tmpfs mounted with `mountOptions` inside a
 * user+mount namespace (no root needed); returns the error seen and what is left in "vm5".
 */
async function restoreInTmpfs(
  mountOptions: string,
): Promise<{ error: { name: string; message: string } | null; left: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "tree_writer_tmpfs_" });
  try {
    const mount = `${dir}/mnt`;
    await Deno.mkdir(mount);
    const module = new URL("../../lib/output/tree_writer.ts", import.meta.url).href;
    const script = `
      import { TreeWriter } from ${JSON.stringify(module)};
      const root = ${JSON.stringify(mount)};
      const data = new Uint8Array(1 << 20).fill(7);
      const events = [
        { type: "entry", entry: { name: "vm5/private.img", kind: "file", typeflag: "0",
          mode: 0o644, mtime: 0, linkname: "", size: data.length, sparse: false } },
        { type: "data", offset: 0, bytes: data },
        { type: "end" },
      ];
      let error = null;
      try {
        await ReadableStream.from(events).pipeTo(new TreeWriter({ root, mapName: (n) => n }));
      } catch (e) {
        error = { name: e.name, message: e.message };
      }
      const left = [];
      try {
        for await (const item of Deno.readDir(root + "/vm5")) left.push(item.name);
      } catch { /* no vm5 */ }
      console.log(JSON.stringify({ error, left }));
    `;
    const command = new Deno.Command("unshare", {
      args: [
        "-rm",
        "sh",
        "-c",
        'mount -t tmpfs -o "$2" none "$1" && exec "$3" eval "$4"',
        "sh",
        mount,
        mountOptions,
        Deno.execPath(),
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const output = await command.output();
    assert(output.success, new TextDecoder().decode(output.stderr));
    return JSON.parse(new TextDecoder().decode(output.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const noTmpfs = !(await canMountTmpfs());

Deno.test({
  name: "TreeWriter reports a full tmpfs as an OutputError and removes the partial file",
  ignore: noTmpfs,
  fn: async () => {
    assert.deepEqual(await restoreInTmpfs("size=256k"), {
      error: {
        name: "OutputError",
        message: 'Cannot write "vm5/private.img": no space left on device',
      },
      left: [],
    });
  },
});

Deno.test({
  name: "TreeWriter reports a read-only file system as an OutputError",
  ignore: noTmpfs,
  fn: async () => {
    assert.deepEqual(await restoreInTmpfs("ro"), {
      error: {
        name: "OutputError",
        message: 'Cannot write "vm5/private.img": read-only file system',
      },
      left: [],
    });
  },
});

import assert from "node:assert/strict";
import { DamagedError, InterruptedError, OutputError } from "../../lib/errors.ts";
import { CreatePace } from "../../lib/output/_background_file.ts";
import { backgroundFs, workerFs, writeTree } from "../../lib/output/mod.ts";
import type { TarEntry, TarEvent } from "../../lib/tar/events.ts";

// TreeWriter with small files published in the background (files get) and writeTree, which
// drives it without streams: the same outcomes as one file after the other.

function entry(name: string, fields: Partial<TarEntry> = {}): TarEvent {
  const kind = fields.kind ?? "file";
  return {
    type: "entry",
    entry: {
      name,
      kind,
      typeflag: kind === "directory" ? "5" : "0",
      mode: kind === "directory" ? 0o755 : 0o644,
      mtime: 1_400_000_000,
      linkname: "",
      size: 0,
      sparse: false,
      ...fields,
    },
  };
}

function* file(
  name: string,
  size: number,
  pieces: Array<[number, Uint8Array]>,
  fields: Partial<TarEntry> = {},
): Generator<TarEvent> {
  yield entry(name, { size, ...fields });
  // One buffer reused for every piece, as files get reads them.
  const scratch = new Uint8Array(64 * 1024);
  for (const [offset, bytes] of pieces) {
    scratch.set(bytes);
    yield { type: "data", offset, bytes: scratch.subarray(0, bytes.length) };
    scratch.fill(0xee);
  }
  yield { type: "end" };
}

function bytes(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed * 13) & 0xff);
}

/** The events of `parts` in order, each generated only when the writer asks for it. */
async function* events(parts: Array<TarEvent | Iterable<TarEvent>>): AsyncGenerator<TarEvent> {
  for (const part of parts) {
    if (Symbol.iterator in part) yield* part;
    else yield part;
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "background_test_" });
  try {
    await fn(dir);
  } finally {
    stopWorkers();
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** The writers' file systems under test; the worker's is stopped when the test ends. */
const writers = {
  always: () => backgroundFs({ always: true }),
  pace: () => backgroundFs(),
  worker: () => track(workerFs()),
};
const started: Array<{ close(): void }> = [];
function track<T extends { close(): void }>(fs: T): T {
  started.push(fs);
  return fs;
}
function stopWorkers(): void {
  for (const fs of started.splice(0)) fs.close();
}

for (
  const [writer, stageFolders] of [
    ["always", false],
    ["pace", false],
    ["always", true],
    ["pace", true],
    ["worker", false],
    ["worker", true],
  ] as Array<[keyof typeof writers, boolean]>
) {
  const always = writer === "always";
  const newFs = writers[writer];
  const mode = (writer === "worker"
    ? "small files written by a worker"
    : always
    ? "every small file in the background"
    : "as the disk's pace decides") +
    (stageFolders ? ", new folders built under a temporary name" : "");

  Deno.test(`background (${mode}): many small files keep content, holes, modes, times and hard links`, async () => {
    await withTempDir(async (root) => {
      const list: Array<TarEvent | Iterable<TarEvent>> = [
        entry("d", { kind: "directory", mode: 0o750, mtime: 1_300_000_000 }),
        { type: "end" },
      ];
      for (let i = 0; i < 50; i++) {
        list.push(
          file(`d/f${i}`, 1000 + i, [[0, bytes(1000 + i, i)]], { mode: 0o600 + (i % 2) * 0o44 }),
        );
      }
      // A small sparse file: data, a hole, data, and a trailing hole.
      list.push(file("d/sparse", 40_000, [[0, bytes(4096, 1)], [20_480, bytes(4096, 2)]]));
      list.push(file("d/empty", 0, []));
      // A hard link to a file that may still be in flight, and a large file (not in background).
      list.push(entry("d/link", { kind: "hardlink", linkname: "d/f49" }), { type: "end" });
      list.push(file("d/large", 300_000, [[0, bytes(60_000, 3)], [60_000, bytes(60_000, 4)]]));
      const done: string[] = [];
      const restored = await writeTree(
        {
          root,
          mapName: (n) =>
            n,
          fs: newFs(),
          stageFolders,
          onFileDone: (p) => done.push(p),
        },
        events(list),
      );
      assert.equal(done.length, 53);
      assert.equal(restored.length, 1 + 53 + 1);
      for (let i = 0; i < 50; i++) {
        const path = `${root}/d/f${i}`;
        assert.deepEqual(await Deno.readFile(path), bytes(1000 + i, i));
        const info = await Deno.lstat(path);
        assert.equal(info.mode! & 0o777, 0o600 + (i % 2) * 0o44);
        assert.equal(info.mtime!.getTime(), 1_400_000_000_000);
      }
      const sparse = await Deno.readFile(`${root}/d/sparse`);
      assert.equal(sparse.length, 40_000);
      assert.deepEqual(sparse.subarray(0, 4096), bytes(4096, 1));
      assert.deepEqual(sparse.subarray(4096, 20_480), new Uint8Array(20_480 - 4096));
      assert.deepEqual(sparse.subarray(20_480, 24_576), bytes(4096, 2));
      assert.deepEqual(sparse.subarray(24_576), new Uint8Array(40_000 - 24_576));
      // Holes stay holes: two 4 KiB pieces of data, not 40 000 bytes, are allocated.
      assert.ok((await Deno.lstat(`${root}/d/sparse`)).blocks! * 512 <= 16_384);
      assert.equal((await Deno.readFile(`${root}/d/empty`)).length, 0);
      assert.equal(
        (await Deno.lstat(`${root}/d/link`)).ino,
        (await Deno.lstat(`${root}/d/f49`)).ino,
      );
      const large = await Deno.readFile(`${root}/d/large`);
      assert.deepEqual(large.subarray(60_000, 120_000), bytes(60_000, 4));
      const dir = await Deno.lstat(`${root}/d`);
      assert.equal(dir.mode! & 0o777, 0o750);
      assert.equal(dir.mtime!.getTime(), 1_300_000_000_000);
      assert.ok(!(await names(`${root}/d`)).some((n) => n.includes("qubes-recover-partial")));
    });
  });

  Deno.test(`background (${mode}): an existing file is not replaced, nothing partial is left`, async () => {
    await withTempDir(async (root) => {
      await Deno.mkdir(`${root}/d`);
      await Deno.writeTextFile(`${root}/d/f3`, "mine");
      const list = () =>
        Array.from({ length: 20 }, (_, i) => file(`d/f${i}`, 10, [[0, bytes(10, i)]]));
      await assert.rejects(
        () =>
          writeTree(
            { root, mapName: (n) => n, fs: newFs(), stageFolders },
            events(list()),
          ),
        (error: unknown) =>
          error instanceof OutputError && /"d\/f3": it exists/.test(error.message),
      );
      assert.equal(await Deno.readTextFile(`${root}/d/f3`), "mine");
      assert.ok(!(await names(`${root}/d`)).some((n) => n.includes("qubes-recover-partial")));
      // With force it is replaced.
      await writeTree(
        { root, mapName: (n) => n, fs: newFs(), stageFolders, force: true },
        events(list()),
      );
      assert.deepEqual(await Deno.readFile(`${root}/d/f3`), bytes(10, 3));
    });
  });

  Deno.test(`background (${mode}): a file then a folder of the same name is damage`, async () => {
    await withTempDir(async (root) => {
      const list = [
        entry("d", { kind: "directory" }),
        { type: "end" } as const,
        file("d/x", 10, [[0, bytes(10, 1)]]),
        file("d/x/y", 10, [[0, bytes(10, 2)]]),
      ];
      await assert.rejects(
        () =>
          writeTree(
            { root, mapName: (n) => n, fs: newFs(), stageFolders },
            events(list),
          ),
        DamagedError,
      );
      assert.deepEqual(await names(`${root}/d`), ["x"]);
    });
  });

  Deno.test(`writeTree (${mode}) stops with InterruptedError when its signal is aborted`, async () => {
    await withTempDir(async (root) => {
      const controller = new AbortController();
      async function* slow(): AsyncGenerator<TarEvent> {
        for (let i = 0;; i++) {
          yield* file(`f${i}`, 10, [[0, bytes(10, i)]]);
          if (i === 5) controller.abort();
        }
      }
      await assert.rejects(
        () =>
          writeTree(
            { root, mapName: (n) => n, fs: newFs(), stageFolders },
            slow(),
            controller.signal,
          ),
        InterruptedError,
      );
      assert.ok(!(await names(root)).some((n) => n.includes("qubes-recover-partial")));
    });
  });
}

Deno.test("CreatePace sends files to the background only while synchronous creates are slow", () => {
  const pace = new CreatePace();
  assert.equal(pace.background(), false);
  pace.record(20); // one slow create (descheduled): nothing changes
  for (let i = 0; i < 3; i++) pace.record(0.01);
  assert.equal(pace.background(), false);
  for (let i = 0; i < 4; i++) pace.record(2); // 2 ms per create: a busy disk
  const choices = Array.from({ length: 64 }, () => pace.background());
  assert.equal(choices.filter((c) => !c).length, 2); // one probe in every 32
  for (let i = 0; i < 5; i++) pace.record(0.01); // quiet again: 5 of the last 8 fast
  assert.equal(pace.background(), false);
});

/** Every name under `dir`, recursively, as paths relative to it. */
async function allNames(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(`${prefix}${e.name}`);
    if (e.isDirectory) out.push(...await allNames(`${dir}/${e.name}`, `${prefix}${e.name}/`));
  }
  return out.sort();
}

Deno.test("stageFolders: a new folder shows nothing under its name until it is complete", async () => {
  await withTempDir(async (root) => {
    const seen: Array<{ final: string[]; top: string[] }> = [];
    async function* list(): AsyncGenerator<TarEvent> {
      yield entry("d", { kind: "directory", mode: 0o750, mtime: 1_300_000_000 });
      yield { type: "end" };
      for (let i = 0; i < 20; i++) yield* file(`d/f${i}`, 100, [[0, bytes(100, i)]]);
      yield entry("d/sub", { kind: "directory", mode: 0o700, mtime: 1_200_000_000 });
      yield { type: "end" };
      yield* file("d/sub/big", 300_000, [[0, bytes(60_000, 7)]], { mode: 0o640 });
      yield entry("d/sub/link", { kind: "hardlink", linkname: "d/f3" });
      yield { type: "end" };
      yield entry("d/sym", { kind: "symlink", linkname: "f1" });
      yield { type: "end" };
      seen.push({ final: await names(`${root}/d`), top: await names(root) });
    }
    const restored = await writeTree(
      { root, mapName: (n) => n, fs: backgroundFs(), stageFolders: true },
      list(),
    );
    assert.equal(restored.length, 1 + 20 + 1 + 3);
    // While it was written: an empty folder holds the name, the tree is in a hidden one.
    assert.deepEqual(seen[0]!.final, []);
    assert.equal(seen[0]!.top.length, 2);
    assert.match(seen[0]!.top.find((n) => n !== "d")!, /^\.d\..*\.qubes-recover-partial$/);
    assert.deepEqual(await names(root), ["d"]);
    assert.ok(!(await allNames(root)).some((n) => n.includes("qubes-recover-partial")));
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(await Deno.readFile(`${root}/d/f${i}`), bytes(100, i));
    }
    const big = await Deno.readFile(`${root}/d/sub/big`);
    assert.equal(big.length, 300_000);
    assert.deepEqual(big.subarray(0, 60_000), bytes(60_000, 7));
    assert.equal((await Deno.lstat(`${root}/d/sub/big`)).mode! & 0o777, 0o640);
    assert.equal(
      (await Deno.lstat(`${root}/d/sub/link`)).ino,
      (await Deno.lstat(`${root}/d/f3`)).ino,
    );
    assert.equal(await Deno.readLink(`${root}/d/sym`), "f1");
    const d = await Deno.lstat(`${root}/d`);
    assert.equal(d.mode! & 0o777, 0o750);
    assert.equal(d.mtime!.getTime(), 1_300_000_000_000);
    const sub = await Deno.lstat(`${root}/d/sub`);
    assert.equal(sub.mode! & 0o777, 0o700);
    assert.equal(sub.mtime!.getTime(), 1_200_000_000_000);
  });
});

Deno.test("stageFolders: an interrupted run keeps its complete files and no temporary name", async () => {
  await withTempDir(async (root) => {
    const controller = new AbortController();
    async function* slow(): AsyncGenerator<TarEvent> {
      yield entry("d", { kind: "directory" });
      yield { type: "end" };
      for (let i = 0;; i++) {
        yield* file(`d/f${i}`, 10, [[0, bytes(10, i)]]);
        if (i === 5) controller.abort();
      }
    }
    await assert.rejects(
      () =>
        writeTree(
          { root, mapName: (n) => n, fs: backgroundFs(), stageFolders: true },
          slow(),
          controller.signal,
        ),
      InterruptedError,
    );
    const left = await allNames(root);
    assert.ok(!left.some((n) => n.includes("qubes-recover-partial")), left.join(" "));
    assert.deepEqual(await names(root), ["d"]);
    for (const name of await names(`${root}/d`)) {
      const i = Number(name.slice(1));
      assert.deepEqual(await Deno.readFile(`${root}/d/${name}`), bytes(10, i));
    }
    assert.ok((await names(`${root}/d`)).length >= 6);
  });
});

Deno.test("stageFolders: a folder name something else fills meanwhile is not replaced", async () => {
  await withTempDir(async (root) => {
    async function* list(): AsyncGenerator<TarEvent> {
      yield entry("d", { kind: "directory" });
      yield { type: "end" };
      yield* file("d/mine", 10, [[0, bytes(10, 1)]]);
      // Another program writes into the (empty) folder that holds the name.
      await Deno.writeTextFile(`${root}/d/theirs`, "theirs");
      yield* file("d/more", 10, [[0, bytes(10, 2)]]);
    }
    await assert.rejects(
      () => writeTree({ root, mapName: (n) => n, fs: backgroundFs(), stageFolders: true }, list()),
      (error: unknown) =>
        error instanceof OutputError && /"d": something else took its name/.test(error.message),
    );
    assert.deepEqual(await allNames(root), ["d", "d/theirs"]);
    assert.equal(await Deno.readTextFile(`${root}/d/theirs`), "theirs");
  });
});

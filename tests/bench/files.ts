/**
 * `deno task bench --files`: `qubes-recover files get IMAGE /home/user` against
 * `debugfs -R 'rdump /home/user DIR' IMAGE` on an ext4 image holding a home tree (many small
 * files in many folders and a few large ones), and `restore --files` from format-2 and -3
 * backups of that image against `restore` then `debugfs rdump`; alternating rounds, medians,
 * ratios, peak RSS, and whether both copies are identical (content, modes, times, symlinks).
 *
 * Every run writes into a folder of its own and nothing is deleted until the end. Deleting the
 * previous round's copy (tens of thousands of files) just before a run made the run slower, and
 * each round more so: ext4 without a journal does not reuse an inode deleted within the last 60 s
 * (360 s while its inode-table block is dirty), and scans past every such inode for each file it
 * creates (`recently_deleted` in fs/ext4/ialloc.c). That cost is the bench's, not the tool's:
 * `debugfs rdump` in the same loop grew the same way (docs/performance.md). Disk space: about
 * `rounds` x 2 copies of the tree per case.
 *
 * With `--fresh-fs` (root), every run of the files case writes into a new, empty ext4 file
 * system on a loop device whose image lies in /dev/shm: no history of deletions, no disk
 * writeback, no copy of the other tool; the figure then depends on neither what ran before
 * nor the order of the runs. Memory: about two copies of the tree at a time.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { recoverFlags } from "../e2e/_cli.ts";
import { describeFull, makeImage } from "../files/_images.ts";
import { seededBytes } from "../support/vm_tree.ts";
import { buildInput, type Geometry, PASSPHRASE } from "./_inputs.ts";
import { measure, type Measurement } from "./_measure.ts";
import { median } from "./_report.ts";

const MIB = 1024 * 1024;

/** Options of {@link benchFiles}. */
export interface FilesBenchOptions {
  /** Bytes of the home tree (about 70 % small files, 30 % in three large ones). */
  treeBytes: number;
  rounds: number;
  keep: boolean;
  log: (line: string) => void;
  /** Backup formats for `restore --files` against restore-then-rdump (none: skip). */
  backupFormats: Array<2 | 3>;
  geometry: Geometry;
  /**
   * Each run writes into a new, empty ext4 file system (a loop device; root only), so that no
   * deletion from before slows the creation of files (the module note) and neither tool finds
   * the other's copy there.
   */
  freshFs?: boolean;
}

/**
 * An ext4 file system made for one run and mounted at `dir` (a loop device; root only). Its
 * image lies in memory (/dev/shm) where there is room, so that neither the disk's writeback
 * nor its other users time the runs; the inode tables and journal are initialised by mkfs, not
 * in the background during the runs. Returns the image's path ({@link dropFreshFs}).
 */
async function mountFreshFs(dir: string, bytes: number): Promise<string> {
  let folder = dirname(dir);
  try {
    const shm = await statfs("/dev/shm");
    if (shm.bavail * shm.bsize > bytes + 4 * 1024 * MIB) folder = "/dev/shm";
  } catch {
    // No /dev/shm: the image stays next to the work folder.
  }
  const image = join(folder, `qr-bench-fs-${Deno.pid}-${basename(dir)}.img`);
  await Deno.writeFile(image, new Uint8Array(0));
  await Deno.truncate(image, bytes);
  const steps: Array<[string, string[]]> = [
    ["mkfs.ext4", ["-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image]],
    ["mkdir", ["-p", dir]],
    ["mount", ["-o", "loop", image, dir]],
  ];
  for (const [cmd, args] of steps) {
    const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
    if (!out.success) {
      await Deno.remove(image).catch(() => {});
      throw new Error(
        `${cmd} failed (--fresh-fs needs root): ${new TextDecoder().decode(out.stderr)}`,
      );
    }
  }
  return image;
}

/** Unmounts a file system of {@link mountFreshFs} and removes its image. */
async function dropFreshFs(fresh: { dir: string; image: string }): Promise<void> {
  await new Deno.Command("umount", { args: [fresh.dir] }).output();
  await Deno.remove(fresh.image).catch(() => {});
}

/** Writes the home tree: folders of 200 files of 1-64 KiB, plus three large files. */
export async function makeHomeTree(dir: string, bytes: number): Promise<{ files: number }> {
  const home = join(dir, "home", "user");
  let files = 0;
  let written = 0;
  const smallBudget = bytes * 0.7;
  for (let folder = 0; written < smallBudget; folder++) {
    const sub = join(home, `folder-${String(folder).padStart(3, "0")}`);
    await Deno.mkdir(sub, { recursive: true });
    for (let i = 0; i < 200 && written < smallBudget; i++) {
      const size = 1024 + ((files * 7919) % (63 * 1024));
      await Deno.writeFile(join(sub, `file-${i}.dat`), seededBytes(size, files));
      written += size;
      files++;
    }
  }
  await Deno.mkdir(join(home, "large"), { recursive: true });
  const large = Math.floor((bytes * 0.3) / 3);
  for (let i = 0; i < 3; i++) {
    using file = await Deno.open(join(home, "large", `big-${i}.bin`), {
      write: true,
      create: true,
    });
    for (let done = 0; done < large; done += 8 * MIB) {
      const piece = seededBytes(Math.min(8 * MIB, large - done), 1000 + i * 100 + done / MIB);
      for (let at = 0; at < piece.length;) at += await file.write(piece.subarray(at));
    }
    files++;
  }
  return { files };
}

function quote(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** A {@link Measurement} with the user + system CPU seconds of the command and its children. */
type Timed = Measurement & { cpu: number };

/** Runs `cmd args` through {@link measure}, also taking its CPU time (GNU time `%U %S`). */
async function measureCpu(
  cmd: string,
  args: string[],
  options: Parameters<typeof measure>[2] = {},
): Promise<Timed> {
  const cpuFile = await Deno.makeTempFile({ prefix: "qr-bench-cpu-" });
  try {
    const result = await measure(
      "/usr/bin/time",
      ["-f", "%U %S", "-o", cpuFile, cmd, ...args],
      options,
    );
    const [user, sys] = (await Deno.readTextFile(cpuFile)).trim().split("\n").pop()!.split(" ");
    return { ...result, cpu: Number(user) + Number(sys) };
  } finally {
    await Deno.remove(cpuFile);
  }
}

/** The 1-minute load average, for the report: figures on a busy machine are noisy. */
async function load(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0]!;
}

/** "median ratio (fast rounds: ratio of the fastest runs)", wall seconds of `a` over `b`. */
function ratios(a: Timed[], b: Timed[]): string {
  const fast = Math.min(...a.map((r) => r.seconds)) / Math.min(...b.map((r) => r.seconds));
  const cpu = median(a.map((r) => r.cpu)) / median(b.map((r) => r.cpu));
  return `${
    (median(a.map((r) => r.seconds)) / median(b.map((r) => r.seconds))).toFixed(2)
  } (fast rounds ${fast.toFixed(2)}, CPU ${cpu.toFixed(2)})`;
}

function line(label: string, runs: Timed[]): string {
  const seconds = median(runs.map((r) => r.seconds));
  const cpu = median(runs.map((r) => r.cpu));
  const rss = Math.max(...runs.map((r) => r.rssProcMiB));
  return `${label.padEnd(34)} ${seconds.toFixed(2).padStart(7)} s  CPU ${
    cpu.toFixed(2).padStart(6)
  } s  peak RSS ${rss.toFixed(0).padStart(4)} MiB`;
}

/**
 * Runs the files benchmark and returns its report lines.
 *
 * @throws {Error} When a run fails or the two copies differ.
 */
export async function benchFiles(options: FilesBenchOptions): Promise<string[]> {
  const root = await Deno.makeTempDir({ prefix: "qr-bench-files-" });
  options.log(`Work folder: ${root}`);
  const mounted: Array<{ dir: string; image: string }> = [];
  try {
    const tree = join(root, "tree");
    const started = performance.now();
    const { files } = await makeHomeTree(tree, options.treeBytes);
    await Deno.mkdir(join(root, "vm"));
    const image = join(root, "vm", "private.img");
    const imageBytes = Math.ceil((options.treeBytes * 1.4 + 64 * MIB) / MIB) * MIB;
    await makeImage(image, tree, imageBytes, ["-t", "ext4", "-N", String(files + 10_000)]);
    options.log(
      `Home tree: ${files} files, ${(options.treeBytes / MIB).toFixed(0)} MiB; image ${
        (imageBytes / MIB).toFixed(0)
      } MiB; built in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const main = new URL("../../main.ts", import.meta.url).pathname;
    const flags = await recoverFlags();
    const ours: Timed[] = [];
    const theirs: Timed[] = [];
    const loads = [await load()];
    const outDir = (tool: string, round: number) =>
      options.freshFs
        ? join(root, `fs-${tool}-${round}`, "out")
        : join(root, `out-${tool}-${round}`);
    for (let round = 0; round < options.rounds; round++) {
      // Only the last round's copies are compared: the others' file systems go.
      if (options.freshFs) { for (const fresh of mounted.splice(0)) await dropFreshFs(fresh); }
      for (const tool of round % 2 === 0 ? ["ours", "debugfs"] : ["debugfs", "ours"]) {
        // A new folder per run: see the module note on deleting between runs.
        const out = outDir(tool, round + 1);
        if (options.freshFs) {
          const dir = dirname(out);
          mounted.push({ dir, image: await mountFreshFs(dir, 2 * options.treeBytes + 256 * MIB) });
        }
        await Deno.mkdir(out);
        await new Deno.Command("sync").output();
        const result = tool === "ours"
          ? await measureCpu(Deno.execPath(), [
            "run",
            "--quiet",
            ...flags,
            main,
            "files",
            "get",
            image,
            "/home/user",
            "--output",
            out,
          ], { env: { NO_COLOR: "1", HOME: Deno.env.get("HOME") ?? "/root" } })
          : await measureCpu("debugfs", ["-R", `rdump /home/user ${out}`, image]);
        if (result.code !== 0) throw new Error(`${tool} failed: ${result.stderr.trim()}`);
        (tool === "ours" ? ours : theirs).push(result);
        options.log(
          `round ${round + 1} ${tool}: ${result.seconds.toFixed(2)} s, CPU ${
            result.cpu.toFixed(2)
          } s, load ${await load()}`,
        );
      }
    }
    loads.push(await load());
    const last = options.rounds;
    const same = JSON.stringify([...await describeFull(outDir("ours", last))]) ===
      JSON.stringify([...await describeFull(outDir("debugfs", last))]);
    if (!same) throw new Error("files get and debugfs rdump wrote different trees");
    const ratio = median(ours.map((r) => r.seconds)) / median(theirs.map((r) => r.seconds));
    const backupLines: string[] = [];
    for (const format of options.backupFormats) {
      const input = await buildInput(root, format, {
        path: image,
        size: imageBytes,
        dataBytes: options.treeBytes,
      }, options.geometry);
      options.log(`v${format} backup of the image: ${(input.backupBytes / MIB).toFixed(0)} MiB`);
      const env = {
        NO_COLOR: "1",
        HOME: Deno.env.get("HOME") ?? "/root",
        QUBES_BACKUP_PASSPHRASE: PASSPHRASE,
      };
      const direct: Timed[] = [];
      const twoStep: Timed[] = [];
      loads.push(await load());
      for (let round = 0; round < options.rounds; round++) {
        for (const tool of round % 2 === 0 ? ["direct", "two-step"] : ["two-step", "direct"]) {
          const out = join(root, `out-v${format}-${tool}-${round + 1}`);
          const run = [Deno.execPath(), "run", "--quiet", ...flags, main];
          const script = tool === "direct"
            ? [...run, "restore", input.backup, "--vm", "work", "--files", "/home/user", "-o", out]
              .map(quote).join(" ")
            : `${
              [...run, "restore", input.backup, "--vm", "work", "-o", `${out}-img`].map(quote).join(
                " ",
              )
            } && mkdir -p ${quote(`${out}/work`)} && debugfs -R ${
              quote(`rdump /home/user ${out}/work`)
            } ${quote(`${out}-img/work/private.img`)} && rm -rf ${quote(`${out}-img`)}`;
          await new Deno.Command("sync").output();
          const result = await measureCpu("bash", ["-c", script], {
            env: { ...env, PATH: Deno.env.get("PATH") ?? "" },
          });
          if (result.code !== 0) {
            throw new Error(`${tool} v${format} failed: ${result.stderr.trim()}`);
          }
          (tool === "direct" ? direct : twoStep).push(result);
          options.log(
            `v${format} round ${round + 1} ${tool}: ${result.seconds.toFixed(2)} s, CPU ${
              result.cpu.toFixed(2)
            } s, load ${await load()}`,
          );
        }
      }
      const same = JSON.stringify([
        ...await describeFull(join(root, `out-v${format}-direct-${last}`, "work")),
      ]) ===
        JSON.stringify([
          ...await describeFull(join(root, `out-v${format}-two-step-${last}`, "work")),
        ]);
      if (!same) throw new Error(`restore --files and restore + rdump differ (v${format})`);
      backupLines.push(
        line(`v${format} restore --files`, direct),
        line(`v${format} restore, then debugfs rdump`, twoStep),
        `v${format} ratio restore --files / (restore + rdump) ${
          ratios(direct, twoStep)
        }; both copies identical`,
      );
      loads.push(await load());
    }
    return [
      `files get vs debugfs rdump: ${files} files, ${
        (options.treeBytes / MIB).toFixed(0)
      } MiB, ${options.rounds} rounds (medians); load average ${loads.join(" -> ")}`,
      line("qubes-recover files get", ours),
      line("debugfs rdump", theirs),
      `ratio files get / debugfs rdump ${
        ratios(ours, theirs)
      }; both copies identical (content, modes, times, links)${
        options.freshFs ? "; each run on a new file system" : ""
      }`,
      ...backupLines,
      `${ratio <= 1 ? "PASS" : "FAIL"} files get at least as fast as debugfs rdump`,
    ];
  } finally {
    for (const fresh of mounted) await dropFreshFs(fresh);
    if (options.keep) options.log(`Kept ${root}`);
    else {
      // Every run's copy is still there: removing them takes a while on a busy disk.
      options.log(`Removing ${root} (the copies of every run) ...`);
      await Deno.remove(root, { recursive: true });
    }
  }
}

/**
 * The `files` command line: `files ls`, `files get`, `files cat` argument handling and the
 * listing as text. lib/cli/app.ts hands it everything after `files`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { catFile, getFiles, type ListEntry, listFiles, type Listing } from "../commands/mod.ts";
import { DamagedError, UsageError } from "../errors.ts";
import { COPY_RESUME_HINT, withHint } from "./hints.ts";
import type { Reporter } from "../reporter.ts";
import { formatSize } from "./render.ts";

/** Help text of the `files` command. */
export const FILES_USAGE = `Files inside a VM image (ext2/3/4), read without root or mount:
  qubes-recover files ls  IMAGE [PATH] [-l] [--json] [--partition N]
  qubes-recover files get IMAGE PATH... --output DIR [--force | --skip-existing]
                          [--partition N]
  qubes-recover files cat IMAGE PATH [--partition N]

IMAGE is a restored private.img, root.img or volatile.img, any ext2/3/4 image,
or a device holding one (/dev/sdb2, a VM's volume on an attached Qubes disk;
read only). PATH is inside the image, absolute or relative to its root
(default /).
An AppVM's private.img holds what the VM mounts at /rw: /home/user in the VM
is home/user in the image, /usr/local is usrlocal, /rw/config is config.
"get" copies each PATH into DIR under its own name (folders recursively):
/home/user gives DIR/user/...; holes, modes, times, symlinks and hard links are
kept (ownership too when run as root); devices, FIFOs and sockets are skipped
with a notice; nothing existing is replaced without --force; --skip-existing
keeps what exists and copies the rest (a stopped copy is resumed).
A disk image with a partition table: "ls" without --partition lists the
partitions; "get" and "cat" use the only ext partition or --partition N.`;

/** The options each `files` subcommand takes (and `--help`). */
const SUB_OPTIONS: Record<string, readonly string[]> = {
  ls: ["partition", "long", "json"],
  get: ["output", "force", "skip-existing", "partition", "verbose"],
  cat: ["partition"],
};

/** What the `files` command line needs from main.ts. */
export interface FilesIo {
  reporter: Reporter;
  signal: AbortSignal;
  /** Prints a line on standard output. */
  print(line: string): void;
  /** Writes bytes to standard output (`files cat`). */
  writeStdout(bytes: Uint8Array): Promise<void>;
}

/**
 * Runs `files <sub> ...` (`args` is what follows `files`).
 *
 * @throws {UsageError} When the arguments are wrong.
 * @throws {DamagedError} When `get` skipped damaged entries (after copying the rest).
 */
export async function runFiles(args: string[], io: FilesIo): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        output: { type: "string", short: "o" },
        force: { type: "boolean" },
        "skip-existing": { type: "boolean" },
        partition: { type: "string" },
        long: { type: "boolean", short: "l" },
        json: { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError({ reason: "usage", detail: (error as Error).message.split("\n")[0]! });
  }
  const { values, positionals } = parsed;
  const [sub, image, ...paths] = positionals;
  if (values.help || sub === undefined) {
    io.print(FILES_USAGE);
    if (!values.help) {
      throw new UsageError({ reason: "usage", detail: '"files" needs ls, get or cat' });
    }
    return;
  }
  if (image === undefined) {
    throw new UsageError({ reason: "usage", detail: `"files ${sub}" needs an IMAGE argument` });
  }
  const takes = SUB_OPTIONS[sub];
  if (takes !== undefined) {
    // Refused, as the other commands refuse an option that does not apply: `get --json` printed
    // text where JSON was asked for.
    const given = Object.keys(values).find((name) => name !== "help" && !takes.includes(name));
    if (given !== undefined) {
      throw new UsageError({
        reason: "usage",
        detail: `Option "--${given}" does not apply to "files ${sub}"`,
      });
    }
  }
  const partition = values.partition === undefined ? undefined : parsePartition(values.partition);
  const common = { reporter: io.reporter, ...(partition === undefined ? {} : { partition }) };
  switch (sub) {
    case "ls": {
      if (paths.length > 1) {
        throw new UsageError({ reason: "usage", detail: `Unexpected argument "${paths[1]}"` });
      }
      const listing = await listFiles(image, paths[0] ?? "/", common);
      if (values.json) io.print(JSON.stringify(listing, null, 2));
      else for (const line of renderListing(listing, values.long ?? false)) io.print(line);
      return;
    }
    case "get": {
      if (values.output === undefined) {
        throw new UsageError({ reason: "usage", detail: "files get needs --output DIR" });
      }
      if (paths.length === 0) {
        throw new UsageError({ reason: "usage", detail: "files get needs at least one PATH" });
      }
      const skipExisting = values["skip-existing"] ?? false;
      if (skipExisting && values.force) {
        throw new UsageError({
          reason: "usage",
          detail: "--force and --skip-existing exclude each other",
        });
      }
      const summary = await getFiles(image, paths, {
        ...common,
        output: values.output,
        force: values.force ?? false,
        skipExisting,
        onExisting: (path) => io.reporter.info(`skipped ${path}: it exists (--skip-existing)`),
        signal: io.signal,
      }).catch((error) => {
        throw withHint(error, "exists", COPY_RESUME_HINT);
      });
      io.reporter.info(
        `Copied ${summary.files} ${summary.files === 1 ? "file" : "files"} (${
          formatSize(summary.bytes)
        }) from "${image}" into "${values.output}"${
          summary.skipped > 0 ? `; skipped ${summary.skipped} (see above)` : ""
        }${
          summary.existing > 0
            ? `; left ${summary.existing} existing ${
              summary.existing === 1 ? "file" : "files"
            } alone`
            : ""
        }`,
      );
      if (summary.damaged > 0) {
        throw new DamagedError({
          reason: "damaged",
          action: "copy everything from",
          subject: { kind: "file", name: image },
          detail: `${summary.damaged} damaged ${
            summary.damaged === 1 ? "entry was" : "entries were"
          } skipped`,
        });
      }
      return;
    }
    case "cat": {
      if (paths.length !== 1) {
        throw new UsageError({ reason: "usage", detail: "files cat needs exactly one PATH" });
      }
      await catFile(image, paths[0]!, io.writeStdout, common);
      return;
    }
    default:
      throw new UsageError({
        reason: "usage",
        detail: `Unknown files command "${sub}" (use ls, get or cat)`,
      });
  }
}

function parsePartition(text: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < 1) {
    throw new UsageError({
      reason: "usage",
      detail: `--partition needs a partition number (1, 2, ...), not "${text}"`,
    });
  }
  return n;
}

/** A listing as lines of text: names only, or `-l` columns like `ls -l`. */
export function renderListing(listing: Listing, long: boolean): string[] {
  if (listing.kind === "partitions") {
    const lines = [
      `A disk image with a ${listing.scheme.toUpperCase()} partition table; choose one with --partition N:`,
    ];
    for (const p of listing.partitions) {
      lines.push(
        `  ${String(p.number).padStart(3)}  ${formatSize(p.size).padStart(10)}  ${p.typeName}${
          p.name ? ` "${p.name}"` : ""
        }${p.ext ? "  (ext file system)" : ""}`,
      );
    }
    return lines;
  }
  if (!long) return listing.entries.map((e) => e.name + (e.kind === "directory" ? "/" : ""));
  return listing.entries.map((e) =>
    [
      modeString(e),
      String(e.links).padStart(3),
      String(e.uid).padStart(5),
      String(e.gid).padStart(5),
      String(e.size).padStart(12),
      new Date(e.mtime * 1000).toISOString().slice(0, 16).replace("T", " "),
      e.target === undefined ? e.name : `${e.name} -> ${e.target}`,
    ].join(" ")
  );
}

const KIND_LETTER: Record<ListEntry["kind"], string> = {
  file: "-",
  directory: "d",
  symlink: "l",
  char: "c",
  block: "b",
  fifo: "p",
  socket: "s",
  unknown: "?",
};

function modeString(e: ListEntry): string {
  const m = e.mode;
  const bit = (mask: number, letter: string) => (m & mask ? letter : "-");
  const exec = (x: number, special: number, set: string, unset: string) =>
    m & special ? (m & x ? set : unset) : (m & x ? "x" : "-");
  return KIND_LETTER[e.kind] + bit(0o400, "r") + bit(0o200, "w") + exec(0o100, 0o4000, "s", "S") +
    bit(0o40, "r") + bit(0o20, "w") + exec(0o10, 0o2000, "s", "S") + bit(0o4, "r") +
    bit(0o2, "w") + exec(0o1, 0o1000, "t", "T");
}

/**
 * The commands of the command line, as a table: name, usage, the options each accepts, help
 * text with examples, and the function that runs it. Adding a command is one entry here;
 * adding an option is one entry in lib/cli/options.ts and its name in the commands that take it.
 *
 * @module
 */

import { convertCommand, infoCommand, restoreCommand, verifyCommand } from "./actions.ts";
import type { CommandContext } from "./context.ts";
import { type FilesIo, runFiles } from "./files.ts";
import { optionHelp } from "./options.ts";

/** One command. */
export interface CommandSpec {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Usage lines, without the program name. */
  readonly usage: readonly string[];
  /** What it does, a few lines. */
  readonly description: readonly string[];
  /** Long names of the options it accepts (see lib/cli/options.ts). */
  readonly options: readonly string[];
  /** Example command lines, each with a comment line. */
  readonly examples: ReadonlyArray<readonly [string, string]>;
  /** Whether it needs the BACKUP argument. */
  readonly takesBackup: boolean;
  /** What its help says of BACKUP, where not the common text. */
  readonly backupText?: readonly string[];
  /** Runs it; returns the numbers for the closing summary. */
  readonly run?: (context: CommandContext) => Promise<void>;
  /**
   * A command with sub-commands and its own argument parser (`files ls|get|cat`): it gets
   * every argument after its name, and prints its own output.
   */
  readonly runRaw?: (args: string[], io: FilesIo) => Promise<void>;
}

const OUTPUT_OPTIONS = ["json", "quiet", "progress", "help"];
const SELECT_OPTIONS = ["vm", "exclude", "no-dom0-home"];

/** Every command, in the order help lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "info",
    summary: "show the format, the header and the VMs of a backup (reads only the start)",
    usage: ["info BACKUP [--json] [--passphrase-file FILE]"],
    description: [
      "Reads the backup's header and its VM list (qubes.xml), nothing else, and lists",
      "the VMs whose data is in the backup: name, kind, template, label, size, path.",
    ],
    options: ["passphrase-file", "max-scrypt-memory", ...OUTPUT_OPTIONS],
    examples: [
      ["qubes-recover info /media/backup/qubes-backup-2016-01-01T120000", "what is in the backup"],
      [
        "qubes-recover info backup --json --passphrase-file pass.txt",
        "the same as JSON Lines, for scripts",
      ],
    ],
    takesBackup: true,
    run: infoCommand,
  },
  {
    name: "verify",
    summary: "check every HMAC and decode every item, writing nothing",
    usage: ["verify BACKUP [--vm NAME]... [--exclude NAME]... [--json]"],
    description: [
      "Reads the whole backup as a restore would, checks every chunk's authentication",
      "and decodes every item to the end, and writes nothing. Takes as long as a restore.",
      "Exit 0 means every selected item is there and intact.",
    ],
    options: [
      ...SELECT_OPTIONS,
      "passphrase-file",
      "max-scrypt-memory",
      "verbose",
      ...OUTPUT_OPTIONS,
    ],
    examples: [
      ["qubes-recover verify /media/backup/qubes-backup-2016-01-01T120000", "check everything"],
      ["qubes-recover verify backup --vm work", "check one VM's data"],
      [
        "QUBES_BACKUP_PASSPHRASE=... qubes-recover verify backup --json -q > verify.jsonl",
        "a monthly check from a script",
      ],
    ],
    takesBackup: true,
    run: verifyCommand,
  },
  {
    name: "restore",
    summary: "restore the VMs' files and the dom0 home into a folder, verified as they are read",
    usage: [
      "restore BACKUP --output DIR [--vm NAME]... [--exclude NAME]... [--no-dom0-home]",
      "        [--force | --skip-existing] [--dry-run] [--salvage] [--json] [-v | -q]",
      "restore BACKUP --output DIR --vm NAME --files PATH... [--force]",
    ],
    description: [
      "Writes DIR/qubes.xml, DIR/<vm>/private.img, root.img, ... and DIR/dom0-home/<user>/.",
      "Every file is written under a temporary name and renamed when complete; existing",
      "files are never replaced without --force. An interrupted restore is resumed with",
      "--skip-existing. --dry-run verifies everything and tells what would be written.",
      "--files takes only PATH from inside one VM's private.img (files --help says more).",
      "A damaged item stops only itself; --salvage then also writes what verifies of it as",
      "NAME.salvaged, lost bytes as zeros, listed in NAME.salvaged.json (docs/salvage.md).",
    ],
    options: [
      "output",
      ...SELECT_OPTIONS,
      "files",
      "force",
      "skip-existing",
      "dry-run",
      "salvage",
      "passphrase-file",
      "max-scrypt-memory",
      "verbose",
      ...OUTPUT_OPTIONS,
    ],
    examples: [
      [
        "qubes-recover restore /media/backup/qubes-backup-2016-01-01T120000 -o ~/restored",
        "restore everything",
      ],
      [
        "qubes-recover restore backup -o ~/restored --vm work --vm dom0",
        "one VM and the dom0 home",
      ],
      ["qubes-recover restore backup -o ~/restored --exclude untrusted", "all but one VM"],
      [
        "qubes-recover restore backup -o ~/restored --vm work --files /home/user",
        "only /home/user of work: ~/restored/work/user/...",
      ],
      [
        "qubes-recover restore backup -o ~/restored --dry-run",
        "what would be written, space needed",
      ],
      [
        "qubes-recover restore backup -o ~/restored --skip-existing",
        "resume an interrupted restore",
      ],
      [
        "gzip -dc backup.gz | qubes-recover restore - -o ~/restored --passphrase-file pass.txt",
        "read a compressed copy",
      ],
    ],
    takesBackup: true,
    run: restoreCommand,
  },
  {
    name: "files",
    summary: "list, copy or print files inside a VM image (ext2/3/4), without root or mount",
    usage: [
      "files ls  IMAGE [PATH] [-l] [--json] [--partition N]",
      "files get IMAGE PATH... --output DIR [--force | --skip-existing] [--partition N]",
      "files cat IMAGE PATH [--partition N]",
    ],
    description: [
      "IMAGE is a restored private.img, root.img or volatile.img, any ext2/3/4 image, or a",
      "device holding one (/dev/sdb2, a VM's volume on an attached Qubes disk), read-only.",
      "PATH is inside the image, absolute or relative to its root (default /). An AppVM's",
      "private.img holds what the VM mounts at /rw: /home/user in the VM is home/user in the",
      "image, /usr/local is usrlocal, /rw/config is config. get copies each PATH into DIR",
      "under its own name (folders recursively), keeping holes, modes, times and links.",
      "A disk image with partitions: ls without --partition lists them.",
    ],
    options: ["output", "force", "skip-existing", "partition", "long", "json", "verbose", "help"],
    examples: [
      ["qubes-recover files ls ~/restored/work/private.img home/user -l", "what is in the home"],
      [
        "qubes-recover files get ~/restored/work/private.img /home/user/Documents -o ~/docs",
        "copy a folder out: ~/docs/Documents",
      ],
      ["qubes-recover files cat ~/restored/work/private.img /home/user/.bashrc", "one file"],
    ],
    takesBackup: false,
    runRaw: runFiles,
  },
  {
    name: "convert",
    summary: "rewrite a format-1 or format-2 backup as format 3, for qvm-backup-restore on R4.x",
    usage: [
      "convert OLD_BACKUP --output NEW_BACKUP [--new-passphrase-file FILE]",
      "        [--compress | --no-compress] [--no-encrypt] [--force]",
    ],
    description: [
      "Reads an R1/R2 backup (format 1 or 2), verifying it as restore does, and writes one",
      "format-3 backup file that today's Qubes restores natively (docs/convert.md). The new",
      "file is written under a temporary name, read back by verify, then renamed.",
    ],
    options: [
      "output",
      "force",
      "passphrase-file",
      "new-passphrase-file",
      "compress",
      "no-compress",
      "no-encrypt",
      "quiet",
      "progress",
      "help",
    ],
    examples: [
      [
        "qubes-recover convert /media/backup/qubes-2014-07-01T120000 -o /media/backup/r3.qubes",
        "same passphrase, compressed as the old one was",
      ],
      [
        "qubes-recover convert old -o new --new-passphrase-file new-pass.txt --compress",
        "a new passphrase, gzip-compressed",
      ],
    ],
    takesBackup: true,
    // The old backup is read from a file or a folder: standard input is refused.
    backupText: [
      "OLD_BACKUP is the backup file, or a folder holding an untarred backup (tar -xf done",
      "by hand) or a format-1 backup; not standard input.",
    ],
    run: convertCommand,
  },
  {
    name: "help",
    summary: "show help for all commands or for one",
    usage: ["help [COMMAND]"],
    description: ["Shows the list of commands, or one command's options and examples."],
    options: ["help"],
    examples: [["qubes-recover help restore", "the options of restore"]],
    takesBackup: false,
  },
  {
    name: "version",
    summary: "print the program version (also --version, -V)",
    usage: ["version"],
    description: ["Prints the version of qubes-recover."],
    options: ["help"],
    examples: [["qubes-recover --version", ""]],
    takesBackup: false,
  },
];

/** The command called `name`. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}

const BACKUP_TEXT = [
  "BACKUP is the backup file, - for standard input, or a folder holding an untarred",
  "backup (tar -xf done by hand) or a format-1 backup.",
];

const PASSPHRASE_TEXT = [
  "The passphrase is read from --passphrase-file, else from the environment variable",
  "QUBES_BACKUP_PASSPHRASE, else asked on the terminal without echo (3 tries).",
];

const EXIT_TEXT = [
  "Exit codes: 0 done, 1 internal error (a bug), 2 usage or BACKUP not found,",
  "3 wrong passphrase, 4 damaged or tampered backup, 5 incomplete backup,",
  "6 not a Qubes backup or unsupported, 7 output not writable,",
  "129/130/143 stopped by SIGHUP/Ctrl-C/SIGTERM (unfinished files removed).",
];

/** A command's usage lines; a line starting with spaces continues the one before. */
function usageOf(command: CommandSpec): string[] {
  return command.usage.map((line, i) =>
    line.startsWith(" ")
      ? `                     ${line.trimStart()}`
      : `${i === 0 ? "Usage: " : "       "}qubes-recover ${line}`
  );
}

/** The short usage shown after a command-line error. */
export function usageLines(command: CommandSpec | undefined): string[] {
  if (command !== undefined) {
    return [
      ...usageOf(command),
      `Try "qubes-recover ${command.name} --help" for more.`,
    ];
  }
  return [
    "Usage: qubes-recover COMMAND BACKUP [OPTION]...",
    'Try "qubes-recover --help" for more.',
  ];
}

/** `qubes-recover --help`. */
export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "qubes-recover - get your data out of Qubes OS backups (formats 1-4), without Qubes",
    "",
    "Usage: qubes-recover COMMAND BACKUP [OPTION]...",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    ...BACKUP_TEXT,
    "",
    "Options:",
    ...optionHelp([
      "output",
      "vm",
      "exclude",
      "no-dom0-home",
      "force",
      "skip-existing",
      "dry-run",
      "passphrase-file",
      "json",
      "verbose",
      "quiet",
      "progress",
      "help",
      "version",
    ]),
    "",
    ...PASSPHRASE_TEXT,
    "",
    "Examples:",
    "  qubes-recover info /media/backup/qubes-backup-2016-01-01T120000",
    "  qubes-recover verify /media/backup/qubes-backup-2016-01-01T120000",
    "  qubes-recover restore /media/backup/qubes-backup-2016-01-01T120000 -o ~/restored",
    "",
    ...EXIT_TEXT,
    "",
    'Each command has its own help: "qubes-recover COMMAND --help". If this machine cannot',
    "run the program, RECOVERY.txt next to it describes the manual way.",
  ].join("\n");
}

/** `qubes-recover COMMAND --help`. */
export function commandHelp(command: CommandSpec): string {
  const lines = [
    ...usageOf(command),
    "",
    ...command.description,
  ];
  if (command.takesBackup) lines.push("", ...(command.backupText ?? BACKUP_TEXT));
  lines.push("", "Options:", ...optionHelp(command.options));
  if (command.options.includes("passphrase-file")) lines.push("", ...PASSPHRASE_TEXT);
  lines.push("", "Examples:");
  for (const [example, comment] of command.examples) {
    lines.push(comment ? `  # ${comment}` : "", `  ${example}`);
  }
  if (command.takesBackup) lines.push("", ...EXIT_TEXT);
  return lines.filter((line, i, all) => !(line === "" && all[i - 1] === "")).join("\n");
}

/**
 * What `info`, `verify` and `restore` do on the command line: call the library, tell the user
 * (text on standard error, or JSON Lines), and close with a summary.
 *
 * @module
 */

import { type BackupInfo, backupInfo, restoreBackup, verifyBackup } from "../commands/mod.ts";
import { type Problem, problemEvent, problemLine, problemsOf } from "../commands/mod.ts";
import { restoreFiles } from "../commands/mod.ts";
import { convertBackup } from "../convert/mod.ts";
import { DamagedError, OutputError } from "../errors.ts";
import { parseMemorySize } from "../format/mod.ts";
import { passphraseGetter } from "./passphrase.ts";
import { RESUME_ALL_HINT, RESUME_HINT, SALVAGE_HINT, withAnyHint, withHint } from "./hints.ts";
import { formatDuration } from "./progress.ts";
import { type CommandContext, flagOption, listOption, stringOption } from "./context.ts";
import { CommandLineError } from "./options.ts";
import { formatSize, renderInfo } from "./render.ts";

/** `1` -> `"1 file"`, `2` -> `"2 files"`. */
export function plural(count: number, word: string, many = `${word}s`): string {
  return `${count} ${count === 1 ? word : many}`;
}

function seconds(context: CommandContext): number {
  return Math.round((Date.now() - context.started) / 100) / 10;
}

function took(context: CommandContext): string {
  const s = seconds(context);
  return s < 60 ? `${s.toFixed(1)} s` : formatDuration(s);
}

/** The common options of the library calls. */
function common(context: CommandContext) {
  const values = context.values;
  return {
    passphrase: context.passphrase,
    retryPassphrase: context.retryPassphrase,
    reporter: context.reporter,
    signal: context.signal,
    vms: listOption(values, "vm"),
    exclude: listOption(values, "exclude"),
    noDom0Home: flagOption(values, "no-dom0-home"),
    ...maxScryptMemory(values),
  };
}

/** `--max-scrypt-memory SIZE`, when given. */
function maxScryptMemory(values: CommandContext["values"]): { maxScryptMemory?: number } {
  const size = parseMemorySize(stringOption(values, "max-scrypt-memory"));
  return size === undefined ? {} : { maxScryptMemory: size };
}

/** Item hooks: the progress line names the item; `-v` lists it when done. */
function itemHooks(context: CommandContext, verb: string) {
  const verbose = flagOption(context.values, "verbose");
  const label = (item: { name: string; vm: string | undefined }) =>
    item.vm === undefined || item.vm === item.name ? item.name : `${item.name} (${item.vm})`;
  return {
    onItemStart: (item: { name: string; vm: string | undefined }) =>
      context.console.progress.setItem(label(item)),
    onProblem: (problem: Problem) => {
      context.console.progress.setItem(undefined);
      context.console.error(`problem: ${problemLine(problem)}`);
      context.console.event(problemEvent(problem));
    },
    onItemDone: (item: { name: string; vm: string | undefined }) => {
      context.console.progress.setItem(undefined);
      if (verb === "") {
        context.console.event({ type: "item", name: item.name, vm: item.vm ?? null });
      }
      if (verbose && verb) context.console.say(`${verb} ${label(item)}`);
    },
  };
}

/** `info`. */
export async function infoCommand(context: CommandContext): Promise<void> {
  const { console } = context;
  const info = await backupInfo(context.backup, {
    ...common(context),
    // The listing says it all (format, key derivation): no notices twice.
    reporter: { ...context.reporter, info: () => {} },
  });
  const vms = info.vms.length;
  Object.assign(context.summary, {
    format: info.format,
    vms,
    dom0Home: info.dom0Home !== undefined,
  });
  if (console.json) {
    for (const event of infoEvents(info)) console.event(event);
  } else {
    console.print(renderInfo(info).join("\n"));
  }
  console.say(
    `Listed ${plural(vms, "VM")}${
      info.dom0Home ? " and the dom0 home" : ""
    } of a format-${info.format} backup in ${took(context)} (verify reads all of it)`,
  );
}

/** The JSON Lines records of `info --json`. */
export function infoEvents(info: BackupInfo): Array<{ type: string } & Record<string, unknown>> {
  const header = info.header;
  return [
    {
      type: "backup",
      format: info.format,
      encrypted: header?.encrypted ?? (info.format === 1 ? false : null),
      compressed: header?.compressed ?? (info.format === 1 ? false : null),
      compressionFilter: header?.compressionFilter ?? null,
      hmacAlgorithm: header?.hmacAlgorithm ?? null,
      cryptoAlgorithm: header?.cryptoAlgorithm ?? null,
      backupId: header?.backupId ?? null,
      keyDerivation: info.kdf ?? null,
    },
    ...info.vms.map((vm) => ({
      type: "vm",
      name: vm.name,
      kind: vm.kind,
      template: vm.template ?? null,
      label: vm.label ?? null,
      backupSize: vm.backupSize ?? null,
      backupPath: vm.backupPath ?? null,
    })),
    ...(info.dom0Home
      ? [{ type: "dom0-home", user: info.dom0Home.user, backupPath: info.dom0Home.backupPath }]
      : []),
  ];
}

/** `verify`. */
export async function verifyCommand(context: CommandContext): Promise<void> {
  const { console } = context;
  const result = await verifyBackup(context.backup, {
    ...common(context),
    ...itemHooks(context, "verified"),
    onItemVerified: (item) => console.event({ type: "item", ...item, vm: item.vm ?? null }),
  });
  Object.assign(context.summary, result);
  console.say(
    `Verified: format ${result.format}, ${plural(result.items, "item")} (${
      plural(result.members, "member")
    }, ${formatSize(result.bytes)} of data), all intact, in ${took(context)}`,
  );
}

/** The writer's "it exists" error, with the other way out: --skip-existing. */
function withResumeHint(error: unknown): unknown {
  return withHint(error, "exists", RESUME_HINT);
}

/**
 * A restore without `--salvage` (and not a dry run) that left out damaged or incomplete items of
 * a backup file: the way to get what verifies of them.
 */
function withSalvageHint(error: unknown, context: CommandContext): unknown {
  const { values } = context;
  if (
    context.backup === "-" || flagOption(values, "salvage") || flagOption(values, "dry-run")
  ) return error;
  const items = (problemsOf(error) ?? []).filter((problem) => problem.item !== undefined);
  return items.length > 0 ? withAnyHint(error, SALVAGE_HINT) : error;
}

/** `restore`. */
export async function restoreCommand(context: CommandContext): Promise<void> {
  const { console, values } = context;
  const output = stringOption(values, "output");
  if (output === undefined) throw new CommandLineError("restore needs --output DIR", "restore");
  const force = flagOption(values, "force");
  const skipExisting = flagOption(values, "skip-existing");
  const dryRun = flagOption(values, "dry-run");
  if (force && skipExisting) {
    throw new CommandLineError("--force and --skip-existing exclude each other", "restore");
  }
  if (dryRun && flagOption(values, "salvage")) {
    throw new CommandLineError("--dry-run and --salvage exclude each other", "restore");
  }
  const verbose = flagOption(values, "verbose");
  const files = listOption(values, "files");
  if (files.length > 0) return await restoreFilesCommand(context, output, files);
  Object.assign(context.summary, { output, dryRun });
  const reporter = {
    ...context.reporter,
    fileDone: (path: string, size: number) => {
      console.event({ type: "file", kind: "file", path, size });
      if (verbose) console.say(`restored ${path} (${formatSize(size)})`);
    },
  };
  const result = await restoreBackup(context.backup, {
    ...common(context),
    ...itemHooks(context, ""),
    reporter,
    output,
    force,
    skipExisting,
    dryRun,
    salvage: flagOption(values, "salvage"),
    onSalvaged: (file) => {
      const lost = file.lost.reduce((sum, range) => sum + range.length, 0);
      console.event({ type: "salvaged", path: `${file.file}.salvaged`, ...file });
      const unchecked = file.unchecked?.reduce((sum, range) => sum + range.length, 0) ?? 0;
      console.warn(
        `salvaged ${file.file}.salvaged: ${formatSize(lost)} lost in ${
          plural(file.lost.length, "range")
        }, zeros there${
          unchecked > 0 ? `; the place of ${formatSize(unchecked)} cannot be checked` : ""
        } (listed in ${file.file}.salvaged.json)`,
      );
    },
    onNotSalvaged: (item, why) => console.warn(`not salvaged "${item}": ${why}`),
    onSalvagedFolder: (folder) => {
      console.event({ type: "salvaged-folder", path: `${folder.folder}.salvaged.json`, ...folder });
      console.warn(
        `salvaged folder ${folder.folder}: ${
          plural(folder.recovered.length, "member")
        } recovered whole, ${
          plural(folder.lost.length, "loss", "losses")
        } (listed in ${folder.folder}.salvaged.json)`,
      );
    },
    onRestoredOther: (path, kind) => {
      console.event({ type: "file", kind, path });
      if (verbose) console.say(`restored ${kind} ${path}${kind === "folder" ? "/" : ""}`);
    },
    onExisting: (path) => {
      console.event({ type: "skipped", path, reason: "exists" });
      console.say(`skipped ${path}: it exists (--skip-existing)`);
    },
    onPlanned: (file) => {
      console.event({ type: "planned", ...file });
      const what = file.kind === "link"
        ? `link ${file.path}`
        : `${file.path} (${formatSize(file.size)}${
          file.space < file.size ? `, ${formatSize(file.space)} on disk` : ""
        })`;
      console.say(
        `would write ${what}${
          file.exists ? (force ? ", replacing the file there" : ", but it exists") : ""
        }`,
      );
    },
  }).catch((error) => {
    throw withSalvageHint(withResumeHint(error), context);
  });
  Object.assign(context.summary, result);
  const skipped = result.skipped > 0
    ? `; left ${plural(result.skipped, "existing file")} alone`
    : "";
  if (!dryRun) {
    const others = [
      result.links > 0 ? plural(result.links, "link") : "",
      result.folders > 0 ? plural(result.folders, "folder") : "",
    ].filter(Boolean);
    const parts = [`${plural(result.files, "file")} (${formatSize(result.bytes)})`, ...others];
    const listed = parts.length === 1
      ? parts[0]
      : `${parts.slice(0, -1).join(", ")} and ${parts.at(-1)}`;
    console.say(
      `Restored ${listed} from a format-${result.format} backup into "${output}" in ${
        took(context)
      }${skipped}`,
    );
    return;
  }
  const needed = result.spaceNeeded ?? 0;
  const available = result.spaceAvailable;
  console.say(
    `Dry run: verified ${plural(result.items, "item")} in ${
      took(context)
    }, wrote nothing${skipped}.`,
  );
  console.say(
    `A restore would write ${plural(result.files, "file")} (${formatSize(result.bytes)}, ${
      formatSize(needed)
    } on disk)${
      result.links > 0 ? ` and ${plural(result.links, "link")}` : ""
    } into "${output}", where ${
      available === undefined ? "the free space is unknown" : `${formatSize(available)} are free`
    }.`,
  );
  const clashes = (result.existing ?? 0) - result.skipped;
  if (clashes > 0 && !force) {
    throw withHint(
      new OutputError({
        reason: "exists",
        action: "restore into",
        subject: { kind: "file", name: output },
        detail: `${plural(clashes, "file exists", "files exist")} already`,
      }),
      "exists",
      RESUME_ALL_HINT,
    );
  }
  if (available !== undefined && needed > available) {
    throw new OutputError({
      reason: "no-space",
      action: "restore into",
      subject: { kind: "file", name: output },
      detail: `it needs ${formatSize(needed)}, only ${formatSize(available)} are free`,
    });
  }
}

/** `convert OLD --output NEW`: format 1 or 2 in, one verified format-3 file out. */
export async function convertCommand(context: CommandContext): Promise<void> {
  const { values } = context;
  const output = stringOption(values, "output");
  if (output === undefined) {
    throw new CommandLineError("convert needs --output NEW_BACKUP", "convert");
  }
  const newFile = stringOption(values, "new-passphrase-file");
  const compress = flagOption(values, "compress");
  const noCompress = flagOption(values, "no-compress");
  if (compress && noCompress) {
    throw new CommandLineError("--compress and --no-compress exclude each other", "convert");
  }
  Object.assign(context.summary, { output });
  const result = await convertBackup(context.backup, output, {
    passphrase: context.passphrase,
    newPassphrase: newFile === undefined ? undefined : passphraseGetter({
      file: newFile,
      stdinIsBackup: stringOption(values, "passphrase-file") === "-",
    }),
    compress: compress ? true : noCompress ? false : undefined,
    encrypt: !flagOption(values, "no-encrypt"),
    force: flagOption(values, "force"),
    reporter: context.reporter,
    signal: context.signal,
  });
  Object.assign(context.summary, result);
  context.console.say(
    `Converted a format-${result.sourceFormat} backup (${
      plural(result.items, "item")
    }) into "${output}": format 3, ${result.encrypted ? "encrypted" : "not encrypted"}, ${
      result.compressed ? "compressed" : "not compressed"
    }, ${formatSize(result.bytes)}, verified, in ${took(context)}`,
  );
}

/** `restore --vm NAME --files PATH...`: paths from inside one VM's private.img, no image left. */
async function restoreFilesCommand(
  context: CommandContext,
  output: string,
  files: string[],
): Promise<void> {
  const { console, values } = context;
  for (const name of ["skip-existing", "dry-run", "exclude", "no-dom0-home", "salvage"]) {
    if (values[name] !== undefined) {
      throw new CommandLineError(`--files does not go with --${name}`, "restore");
    }
  }
  const vms = listOption(values, "vm");
  if (vms.length !== 1) {
    throw new CommandLineError("restore --files needs exactly one --vm NAME", "restore");
  }
  const verbose = flagOption(values, "verbose");
  const got = await restoreFiles(context.backup, {
    passphrase: context.passphrase,
    ...maxScryptMemory(values),
    reporter: {
      ...context.reporter,
      fileDone: (path: string, size: number) => {
        console.event({ type: "file", kind: "file", path, size });
        if (verbose) console.say(`restored ${path} (${formatSize(size)})`);
      },
    },
    signal: context.signal,
    vm: vms[0]!,
    files,
    output,
    force: flagOption(values, "force"),
  });
  Object.assign(context.summary, { output, ...got });
  console.say(
    `Restored ${plural(got.files, "file")} (${formatSize(got.bytes)}) from ${
      vms[0]
    }'s private.img into "${output}/${got.folder}"${
      got.skipped > 0 ? `; skipped ${got.skipped} (see above)` : ""
    } in ${took(context)}`,
  );
  if (got.damaged > 0) {
    throw new DamagedError({
      reason: "damaged",
      action: "restore everything",
      detail: `${plural(got.damaged, "damaged entry", "damaged entries")} skipped`,
    });
  }
}

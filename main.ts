// deno-lint-ignore-file no-console
/**
 * qubes-recover: get data back out of Qubes OS backups (formats 1-4) on any Linux machine.
 *
 * This file only parses arguments, calls the library and maps its typed errors to exit codes.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { backupInfo, restoreBackup, verifyBackup } from "./lib/commands/mod.ts";
import { passphraseGetter } from "./lib/cli/passphrase.ts";
import { ProgressLine } from "./lib/cli/progress.ts";
import { formatSize, renderInfo } from "./lib/cli/render.ts";
import { ExitCode, RecoverError, UsageError } from "./lib/errors.ts";
import { parseMemorySize } from "./lib/format/scrypt_cost.ts";
import type { Reporter } from "./lib/reporter.ts";

const USAGE = `qubes-recover - restore Qubes OS backups (formats 1-4) without Qubes

Usage:
  qubes-recover info    BACKUP [--json]
  qubes-recover verify  BACKUP [--vm NAME]...
  qubes-recover restore BACKUP --output DIR [--vm NAME]... [--force]

BACKUP is the backup file, - for standard input, or a directory holding an
untarred backup (or a format-1 backup directory).

Options:
  -o, --output DIR           where restore writes: DIR/<vm>/private.img, ...,
                             DIR/dom0-home/<user>/...
      --vm NAME              only this VM (repeat for more); "dom0" is the dom0 home
      --force                replace files that already exist in DIR
      --passphrase-file FILE read the passphrase from FILE (- for standard input);
                             one trailing newline is stripped
      --json                 info: print JSON on standard output
      --max-scrypt-memory SIZE  format 4: allow scrypt to use SIZE (e.g. 4G) per key
  -v, --verbose              list every restored file
  -h, --help                 show this help

The passphrase is read from --passphrase-file, else from the environment
variable QUBES_BACKUP_PASSPHRASE, else asked on the terminal (no echo).

Exit codes: 0 done, 2 usage, 3 wrong passphrase, 4 damaged or tampered backup,
5 incomplete backup, 6 unsupported format, 7 output not writable, 130 interrupted.`;

function parse(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        output: { type: "string", short: "o" },
        vm: { type: "string", multiple: true },
        force: { type: "boolean" },
        "passphrase-file": { type: "string" },
        "max-scrypt-memory": { type: "string" },
        json: { type: "boolean" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0]!);
  }
}

async function run(args: string[], signal: AbortSignal, progress: ProgressLine): Promise<void> {
  const { values, positionals } = parse(args);
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    if (!values.help) throw new UsageError("No command given");
    return;
  }
  const [command, backup, ...extra] = positionals;
  if (backup === undefined) throw new UsageError(`"${command}" needs a BACKUP argument`);
  if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0]}"`);
  const say = (message: string) => {
    progress.clear();
    console.error(message);
  };
  const reporter: Reporter = {
    info: say,
    warn: (message) => say(`warning: ${message}`),
    progress: (read, total) => progress.update(read, total),
    ...(values.verbose
      ? { fileDone: (path: string, size: number) => say(`restored ${path} (${formatSize(size)})`) }
      : {}),
  };
  const getPassphrase = passphraseGetter({
    file: values["passphrase-file"],
    stdinIsBackup: backup === "-",
  });
  const passphrase = async () => {
    progress.pause();
    try {
      return await getPassphrase();
    } finally {
      progress.resume();
    }
  };
  const maxScryptMemory = parseMemorySize(values["max-scrypt-memory"]);
  const common = {
    passphrase,
    reporter,
    signal,
    vms: values.vm ?? [],
    ...(maxScryptMemory === undefined ? {} : { maxScryptMemory }),
  };
  switch (command) {
    case "info": {
      const info = await backupInfo(backup, common);
      progress.clear();
      if (values.json) console.log(JSON.stringify(info, null, 2));
      else console.log(renderInfo(info).join("\n"));
      return;
    }
    case "verify": {
      const summary = await verifyBackup(backup, common);
      say(`Verified: format ${summary.format}, ${summary.items} items, all intact`);
      return;
    }
    case "restore": {
      if (values.output === undefined) throw new UsageError("restore needs --output DIR");
      const summary = await restoreBackup(backup, {
        ...common,
        output: values.output,
        force: values.force ?? false,
      });
      say(
        `Restored ${summary.files} files (${
          formatSize(summary.bytes)
        }) from a format-${summary.format} backup into "${values.output}"`,
      );
      return;
    }
    default:
      throw new UsageError(`Unknown command "${command}" (use info, verify or restore)`);
  }
}

/** How long cleanup after Ctrl-C may take before the process ends anyway. */
const INTERRUPT_GRACE_MS = 3000;

if (import.meta.main) {
  const controller = new AbortController();
  const progress = new ProgressLine();
  const onInterrupt = () => {
    progress.clear();
    if (controller.signal.aborted) Deno.exit(ExitCode.Interrupted);
    console.error(
      "qubes-recover: Interrupted: removing unfinished files (Ctrl-C again to quit now)",
    );
    controller.abort();
    // A read blocked on a pipe does not see the abort; unfinished files are removed by then.
    Deno.unrefTimer(setTimeout(() => Deno.exit(ExitCode.Interrupted), INTERRUPT_GRACE_MS));
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  let code: number = ExitCode.Ok;
  try {
    await run(Deno.args, controller.signal, progress);
  } catch (error) {
    progress.clear();
    if (controller.signal.aborted) {
      console.error("qubes-recover: Interrupted");
      code = ExitCode.Interrupted;
    } else if (error instanceof RecoverError) {
      console.error(`qubes-recover: ${error.message}`);
      code = error.exitCode;
    } else {
      const message = error instanceof Error ? error.message : String(error);
      console.error(`qubes-recover: internal error: ${message.split("\n")[0]}`);
      code = ExitCode.Internal;
    }
  } finally {
    progress.clear();
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  Deno.exit(code);
}

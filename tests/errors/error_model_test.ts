/**
 * The error model: exit codes follow from data (class and reason), never from message text;
 * names are attached by the stage that knows them, by subject, not by reading messages; CLI
 * hints come from the reason.
 */

import assert from "node:assert/strict";
import { FORCE_HINT, messageWithHint, RESUME_HINT, withHint } from "../../lib/cli/hints.ts";
import {
  DamagedError,
  type ErrorFacts,
  ExitCode,
  exitCodeOf,
  IncompleteError,
  InterruptedError,
  OutputError,
  PassphraseError,
  type Reason,
  REASONS,
  RecoverError,
  renderMessage,
  UnsupportedError,
  UsageError,
} from "../../lib/errors.ts";

type AnyClass = new (facts: ErrorFacts<never> | string) => RecoverError;

/** Each class and the exit code it stands for. */
const CLASSES: [AnyClass, number][] = [
  [UsageError as AnyClass, ExitCode.Usage],
  [PassphraseError as AnyClass, ExitCode.Passphrase],
  [DamagedError as AnyClass, ExitCode.Damaged],
  [IncompleteError as AnyClass, ExitCode.Incomplete],
  [UnsupportedError as AnyClass, ExitCode.Unsupported],
  [OutputError as AnyClass, ExitCode.Output],
  [InterruptedError as AnyClass, ExitCode.Interrupted],
];

function classFor(reason: Reason): AnyClass {
  const found = CLASSES.find(([, code]) => code === REASONS[reason]);
  assert.ok(found, `no class for reason ${reason}`);
  return found[0];
}

const TEMPLATES: ((reason: Reason) => Omit<ErrorFacts, "reason">)[] = [
  () => ({ action: "verify chunk", subject: { kind: "chunk", name: "vm5/a.000" }, detail: "x" }),
  () => ({ detail: "bad decrypt: wrong passphrase or key derivation" }),
  () => ({ detail: "it exists (use --force to replace it)" }),
  (reason) => ({ action: `do ${reason}`, detail: "ciphertext ends in the middle of a block" }),
  () => ({ action: "restore", subject: { kind: "item", name: "vm1/p.img" }, detail: "" }),
];

Deno.test("errors: every reason maps to one exit code, and its class is the class of that code", () => {
  for (const reason of Object.keys(REASONS) as Reason[]) {
    const error = new (classFor(reason))({ reason, detail: "why" } as ErrorFacts<never>);
    assert.equal(error.reason, reason);
    assert.equal(error.exitCode, REASONS[reason]);
    assert.equal(exitCodeOf(error), REASONS[reason]);
  }
  // A text message takes the class's general reason.
  for (const [Class, code] of CLASSES) assert.equal(new Class("anything").exitCode, code);
});

Deno.test("errors: rewording a message cannot change an exit code", () => {
  for (const reason of Object.keys(REASONS) as Reason[]) {
    const Class = classFor(reason);
    const codes = new Set<number>();
    for (const template of TEMPLATES) {
      const error = new Class({ reason, ...template(reason) } as ErrorFacts<never>);
      codes.add(error.exitCode);
      // Even a message replaced after the fact changes nothing.
      Object.defineProperty(error, "message", { value: "Cannot read: HMAC does not match" });
      codes.add(error.exitCode);
      Object.defineProperty(error, "detail", { value: "bad decrypt" });
      codes.add(exitCodeOf(error));
    }
    assert.deepEqual([...codes], [REASONS[reason]], reason);
  }
  // exitCodeOf reads the reason alone.
  assert.equal(exitCodeOf({ reason: "bad-padding" }), ExitCode.Damaged);
  assert.doesNotMatch(exitCodeOf.toString(), /message|detail/);
});

Deno.test("errors: messages are rendered from the facts in one shape", () => {
  assert.equal(
    renderMessage({
      reason: "hmac-mismatch",
      action: "verify chunk",
      subject: { kind: "chunk", name: "vm5/private.img.003" },
      detail: "HMAC does not match",
    }),
    'Cannot verify chunk "vm5/private.img.003": HMAC does not match',
  );
  assert.equal(
    renderMessage({ reason: "damaged", detail: "HMAC file is not ASCII text" }),
    "HMAC file is not ASCII text",
  );
  assert.equal(
    renderMessage({
      reason: "out-of-place",
      action: "read the archive",
      subject: { kind: "member", name: "vm5/x", inDetail: true },
      detail: 'its first volume continues member "vm5/x"',
    }),
    'Cannot read the archive: its first volume continues member "vm5/x"',
  );
  // Names from a backup stay on one line.
  assert.equal(
    new DamagedError({
      reason: "damaged",
      action: "read",
      subject: { kind: "file", name: "a\nb" },
      detail: "x",
    }).message,
    'Cannot read "a\\nb": x',
  );
});

Deno.test("errors: the stage that knows a name attaches it by subject, not by the message text", () => {
  // about(): a bare detail from a parser gets the chunk's name.
  const bare = new DamagedError("HMAC file is not ASCII text");
  const named = bare.about("verify chunk", { kind: "chunk", name: "vm5/a.img.000" });
  assert.ok(named instanceof DamagedError);
  assert.equal(named.message, 'Cannot verify chunk "vm5/a.img.000": HMAC file is not ASCII text');
  assert.equal(named.reason, "damaged");
  assert.equal(named.cause, bare);
  // within(): an error about something else is put into the item's context...
  const gzip = new IncompleteError("Cannot decompress gzip data: it ends early", {
    reason: "truncated",
  });
  const inItem = gzip.within("restore", { kind: "item", name: "vm5/private.img" });
  assert.ok(inItem instanceof IncompleteError);
  assert.equal(inItem.reason, "truncated");
  assert.equal(
    inItem.message,
    'Cannot restore "vm5/private.img": cannot decompress gzip data: it ends early',
  );
  // ...once: an error whose subject lies in the item is left as it is.
  assert.equal(inItem.within("restore", { kind: "item", name: "vm5/private.img" }), inItem);
  const member = new DamagedError({
    reason: "damaged",
    action: "read tar member",
    subject: { kind: "member", name: "vm5/private.img" },
    detail: "x",
  });
  assert.equal(member.within("restore", { kind: "item", name: "vm5/private.img" }), member);
  // The text is not consulted: a message that quotes the item but has no subject is wrapped.
  const quoting = new DamagedError('Cannot read "vm5/private.img": x');
  assert.notEqual(quoting.within("restore", { kind: "item", name: "vm5/private.img" }), quoting);
});

Deno.test("errors: CLI hints are chosen by reason, not by text", () => {
  const exists = new OutputError({
    reason: "exists",
    action: "restore",
    subject: { kind: "file", name: "vm5/a" },
    detail: "it exists",
  });
  assert.equal(exists.message, 'Cannot restore "vm5/a": it exists');
  assert.equal(messageWithHint(exists), `Cannot restore "vm5/a": it exists${FORCE_HINT}`);
  withHint(exists, "exists", RESUME_HINT);
  assert.equal(messageWithHint(exists), `Cannot restore "vm5/a": it exists${RESUME_HINT}`);
  // Another output error, even one whose text says "it exists", gets no hint.
  const other = new OutputError('Cannot write "x": it exists');
  assert.equal(messageWithHint(other), other.message);
});

Deno.test("errors: no library code decides by reading an error's message text", async () => {
  const root = new URL("../../lib/", import.meta.url).pathname;
  const offenders: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) await walk(`${path}/`);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        for (const [i, line] of text.split("\n").entries()) {
          if (/message\.(startsWith|endsWith|includes)\(/.test(line)) {
            offenders.push(`${path.slice(root.length)}:${i + 1}`);
          }
        }
      }
    }
  };
  await walk(root);
  assert.deepEqual(offenders, []);
});

Deno.test("errors: naming a chunk keeps an error's own action; an initialism keeps its case", () => {
  // A bare detail gets the chunk's name as its action and subject.
  const bare = new DamagedError({ reason: "damaged", detail: "HMAC file is not ASCII text" });
  assert.equal(
    bare.about("verify chunk", { kind: "chunk", name: "vm5/a.000" }).message,
    'Cannot verify chunk "vm5/a.000": HMAC file is not ASCII text',
  );
  // An error with an action of its own is put into context instead of losing that action.
  const decode = new DamagedError({
    reason: "damaged",
    action: "decompress gzip data",
    detail: "invalid block type",
  });
  const named = decode.about("decrypt chunk", { kind: "chunk", name: "vm5/a.001" });
  assert.equal(
    named.message,
    'Cannot decrypt chunk "vm5/a.001": cannot decompress gzip data: invalid block type',
  );
  assert.equal(named.reason, "damaged");
  // Inside another message, "Cannot" becomes "cannot", but "HMAC" and "GPT" stay.
  const gpt = new DamagedError({
    reason: "damaged",
    detail: "GPT partition 2 ends before it starts",
  });
  assert.equal(
    gpt.within("restore", { kind: "item", name: "vm5/root.img" }).message,
    'Cannot restore "vm5/root.img": GPT partition 2 ends before it starts',
  );
});

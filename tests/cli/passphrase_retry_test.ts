/**
 * A wrong passphrase typed at the prompt is asked again (3 tries in all); one from a file or
 * the environment is not.
 */

import assert from "node:assert/strict";
import { passphraseGetter, PROMPT_TRIES } from "../../lib/cli/passphrase.ts";
import { verifyBackup } from "../../lib/commands/mod.ts";
import { PassphraseError } from "../../lib/errors.ts";

const fixtures = new URL("../fixtures/", import.meta.url).pathname;
const sample = JSON.parse(await Deno.readTextFile(`${fixtures}sample-v2.json`));
const BACKUP = `${fixtures}${sample.file}`;

function prompter(answers: string[]) {
  const asked: string[] = [];
  return {
    asked,
    prompt: () => {
      const answer = answers[asked.length] ?? "";
      asked.push(answer);
      return Promise.resolve(new TextEncoder().encode(answer));
    },
  };
}

Deno.test("a wrong passphrase at the prompt is asked again, and the right one opens the backup", async () => {
  const { asked, prompt } = prompter(["wrong", "also wrong", sample.passphrase]);
  const getter = passphraseGetter({ stdinIsBackup: false }, prompt);
  const left: number[] = [];
  const summary = await verifyBackup(BACKUP, {
    passphrase: getter,
    retryPassphrase: () => getter.retry() && left.push(getter.triesLeft) > 0,
  });
  assert.deepEqual(left, [2, 1]);
  assert.equal(summary.items, 5);
  assert.equal(asked.length, 3);
  assert.equal(getter.triesLeft, 0);
});

Deno.test("three wrong passphrases at the prompt end with exit 3", async () => {
  const { asked, prompt } = prompter(["a", "b", "c", sample.passphrase]);
  const getter = passphraseGetter({ stdinIsBackup: false }, prompt);
  await assert.rejects(
    verifyBackup(BACKUP, { passphrase: getter, retryPassphrase: () => getter.retry() }),
    (error) => error instanceof PassphraseError && error.exitCode === 3,
  );
  assert.equal(asked.length, PROMPT_TRIES);
});

Deno.test("a passphrase from a file is never retried", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "wrong\n");
    const { asked, prompt } = prompter([sample.passphrase]);
    const getter = passphraseGetter({ file, stdinIsBackup: false }, prompt);
    await assert.rejects(
      verifyBackup(BACKUP, { passphrase: getter, retryPassphrase: () => getter.retry() }),
      PassphraseError,
    );
    assert.equal(asked.length, 0);
    assert.equal(getter.retry(), false);
  } finally {
    await Deno.remove(file);
  }
});

/**
 * The program on a real terminal (tmux): the passphrase prompt without echo, asked again after a
 * wrong passphrase, three tries in all; the progress line drawn in place and gone at the end.
 */

import assert from "node:assert/strict";
import { recoverFlags, sh } from "./_cli.ts";

const root = new URL("../../", import.meta.url).pathname;
const fixtures = `${root}tests/fixtures/`;
const sample = JSON.parse(await Deno.readTextFile(`${fixtures}sample-v2.json`));
const BACKUP = `${fixtures}${sample.file}`;

/** A tmux session running one command line; its screen can be read and typed into. */
class Tmux {
  readonly name = `qr-test-${crypto.randomUUID().slice(0, 8)}`;

  async start(command: string): Promise<void> {
    const script = await Deno.makeTempFile({ suffix: ".sh" });
    await Deno.writeTextFile(script, `${command}\necho "EXIT=$?"\nsleep 600\n`);
    await sh(`tmux new-session -d -s ${this.name} -x 120 -y 40 "bash ${script}"`);
  }

  async screen(): Promise<string> {
    return await sh(`tmux capture-pane -t ${this.name} -p -J`);
  }

  async type(text: string): Promise<void> {
    await sh(`tmux send-keys -t ${this.name} -l '${text.replaceAll("'", "'\\''")}'`);
    await sh(`tmux send-keys -t ${this.name} Enter`);
  }

  /** Waits until the screen matches `pattern`; returns the screen. */
  async waitFor(pattern: RegExp, seconds = 60): Promise<string> {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      const screen = await this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${pattern}:\n${screen}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async stop(): Promise<void> {
    await sh(`tmux kill-session -t ${this.name}`).catch(() => {});
  }
}

async function cliLine(args: string[]): Promise<string> {
  const quoted = [...await recoverFlags(), `${root}main.ts`, ...args].map((a) => `'${a}'`);
  return `env -u QUBES_BACKUP_PASSPHRASE NO_COLOR=1 '${Deno.execPath()}' run --quiet ${
    quoted.join(" ")
  }`;
}

Deno.test("terminal: a wrong passphrase is asked again; nothing is echoed", async () => {
  const tmux = new Tmux();
  try {
    await tmux.start(await cliLine(["info", BACKUP]));
    await tmux.waitFor(/Backup passphrase: $/m);
    await tmux.type("not the passphrase");
    await tmux.waitFor(/Wrong passphrase, try again \(2 tries left\)\nBackup passphrase: $/m);
    await tmux.type(sample.passphrase);
    const screen = await tmux.waitFor(/EXIT=\d+/);
    assert.match(screen, /EXIT=0/);
    assert.match(screen, /Format:\s+2/);
    assert.doesNotMatch(screen, /not the passphrase|qubes-recover-demo/);
  } finally {
    await tmux.stop();
  }
});

Deno.test("terminal: with the backup on standard input, the passphrase is asked on /dev/tty", async () => {
  const tmux = new Tmux();
  const out = await Deno.makeTempDir({ prefix: "qr-tty-" });
  try {
    await tmux.start(`${await cliLine(["restore", "-", "--output", out])} < '${BACKUP}'`);
    await tmux.waitFor(/Backup passphrase: $/m);
    await tmux.type(sample.passphrase);
    const screen = await tmux.waitFor(/EXIT=\d+/);
    assert.match(screen, /EXIT=0/);
    assert.match(screen, /^Restored \d+ files .* from a format-2 backup into /m);
    assert.doesNotMatch(screen, /qubes-recover-demo/);
  } finally {
    await tmux.stop();
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("terminal: three wrong passphrases end with exit 3", async () => {
  const tmux = new Tmux();
  try {
    await tmux.start(await cliLine(["verify", BACKUP]));
    for (const left of [2, 1]) {
      await tmux.waitFor(/Backup passphrase: $/m);
      await tmux.type(`wrong ${left}`);
      await tmux.waitFor(new RegExp(`\\(${left} tr(y|ies) left\\)`));
    }
    await tmux.waitFor(/Backup passphrase: $/m);
    await tmux.type("wrong again");
    const screen = await tmux.waitFor(/EXIT=\d+/);
    assert.match(screen, /qubes-recover: .*wrong passphrase/);
    assert.match(screen, /EXIT=3/);
  } finally {
    await tmux.stop();
  }
});

Deno.test("terminal: the progress line is drawn in place and replaced by the summary", async () => {
  const dir = await Deno.makeTempDir({ prefix: "qr-e2e-tty-" });
  const tmux = new Tmux();
  try {
    // A backup read slowly through a pipe, so the progress line has time to show.
    const fifo = `${dir}/slow.sh`;
    await Deno.writeTextFile(
      fifo,
      `for i in $(seq 0 25); do dd if='${BACKUP}' bs=10240 skip=$i count=1 status=none; sleep 0.2; done`,
    );
    const line = await cliLine(["verify", "-", "--progress"]);
    await tmux.start(
      `bash '${fifo}' | env QUBES_BACKUP_PASSPHRASE='${sample.passphrase}' ${
        line.replace("env -u QUBES_BACKUP_PASSPHRASE ", "")
      }`,
    );
    // Size read so far and the rate (the total of a pipe is unknown).
    await tmux.waitFor(/^Reading backup: [\d.]+ KiB, [\d.]+ KiB\/s/m);
    const screen = await tmux.waitFor(/EXIT=\d+/);
    assert.match(screen, /EXIT=0/);
    assert.match(screen, /Verified: format 2, 5 items/);
    // Redrawn in place: no progress text remains once the summary is there.
    assert.doesNotMatch(screen, /Reading backup/);
  } finally {
    await tmux.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

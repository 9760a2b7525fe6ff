import assert from "node:assert/strict";
import { ProgressLine } from "../../lib/cli/progress.ts";

function fakeTerminal(isTerminal: boolean) {
  let text = "";
  return {
    isTerminal: () => isTerminal,
    writeSync(p: Uint8Array) {
      text += new TextDecoder().decode(p);
      return p.length;
    },
    get text() {
      return text;
    },
  };
}

Deno.test("ProgressLine draws in place on a terminal and restores the cursor", () => {
  const terminal = fakeTerminal(true);
  const line = new ProgressLine(terminal);
  line.update(512 * 1024 * 1024, 2 * 1024 ** 3);
  assert.equal(terminal.text, "\x1b[?25l\r\x1b[KReading backup: 25% (512.0 MiB of 2.0 GiB)");
  line.update(600 * 1024 * 1024, 2 * 1024 ** 3); // throttled: within 100 ms
  line.clear();
  assert.ok(terminal.text.endsWith("\r\x1b[K\x1b[?25h"));
  line.clear();
  assert.equal(terminal.text.match(/\?25h/g)?.length, 1);
});

Deno.test("ProgressLine prints nothing when standard error is not a terminal", () => {
  const terminal = fakeTerminal(false);
  const line = new ProgressLine(terminal);
  line.update(1, 2);
  line.clear();
  assert.equal(terminal.text, "");
});

Deno.test("ProgressLine shows the rate, the time left and the current item", () => {
  const terminal = fakeTerminal(true);
  let now = 1_000_000;
  const line = new ProgressLine(terminal, "auto", () => now);
  const MiB = 1024 * 1024;
  line.setItem("vm5/private.img (work)");
  line.update(0, 1000 * MiB);
  now += 2000;
  line.update(200 * MiB, 1000 * MiB);
  assert.equal(
    line.text(),
    "Reading backup: 20% (200.0 MiB of 1000.0 MiB), 100.0 MiB/s, 0:08 left, vm5/private.img (work)",
  );
  assert.match(terminal.text, /100\.0 MiB\/s, 0:08 left/);
  line.clear();
});

Deno.test("ProgressLine with --progress off a terminal prints plain lines, never escapes", () => {
  const terminal = fakeTerminal(false);
  let now = 0;
  const line = new ProgressLine(terminal, "on", () => now);
  for (let i = 0; i <= 30; i++) {
    now = i * 1000;
    line.update(i * 1024, 30 * 1024);
  }
  line.clear();
  const lines = terminal.text.split("\n").filter(Boolean);
  assert.equal(lines.length, 3, terminal.text);
  assert.ok(lines.every((l) => l.startsWith("Reading backup: ")));
  assert.ok(!terminal.text.includes("\x1b") && !terminal.text.includes("\r"), terminal.text);
});

Deno.test("ProgressLine with --no-progress draws nothing, even on a terminal", () => {
  const terminal = fakeTerminal(true);
  const line = new ProgressLine(terminal, "off");
  line.update(1, 2);
  line.clear();
  assert.equal(terminal.text, "");
});

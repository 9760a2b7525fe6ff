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

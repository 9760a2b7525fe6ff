import assert from "node:assert/strict";
import { InterruptedError } from "../../lib/errors.ts";
import { readHidden, stripOneNewline } from "../../lib/cli/passphrase.ts";

function terminal(input: string) {
  const bytes = new TextEncoder().encode(input);
  let at = 0;
  const modes: boolean[] = [];
  /** Modes set and text shown, in order. */
  const events: string[] = [];
  let shown = "";
  return {
    modes,
    events,
    get shown() {
      return shown;
    },
    input: {
      read(p: Uint8Array) {
        if (at >= bytes.length) return Promise.resolve(null);
        const n = Math.min(3, p.length, bytes.length - at); // arrives in small pieces
        p.set(bytes.subarray(at, at + n));
        at += n;
        return Promise.resolve(n);
      },
      setRaw(mode: boolean) {
        modes.push(mode);
        events.push(mode ? "raw" : "cooked");
      },
    },
    output: {
      writeSync(p: Uint8Array) {
        shown += new TextDecoder().decode(p);
        events.push(new TextDecoder().decode(p));
        return p.length;
      },
    },
  };
}

Deno.test("readHidden() reads a line without echo, with backspace over UTF-8 and Ctrl-U", async () => {
  const t = terminal("wrong\x15pö\x7fässwörd\r");
  const bytes = await readHidden(t.input, t.output, "Backup passphrase: ");
  assert.equal(new TextDecoder().decode(bytes), "pässwörd");
  assert.equal(t.shown, "Backup passphrase: \n");
  assert.deepEqual(t.modes, [true, false]);
  // Echo is off before the prompt shows: what is typed as soon as it shows is never echoed
  // (the tmux test typed into the moment between the two, one time in many).
  assert.deepEqual(t.events, ["raw", "Backup passphrase: ", "cooked", "\n"]);
});

Deno.test("readHidden() ends with InterruptedError on Ctrl-C and restores the terminal", async () => {
  const t = terminal("abc\x03");
  await assert.rejects(readHidden(t.input, t.output, "? "), InterruptedError);
  assert.deepEqual(t.modes, [true, false]);
});

Deno.test("stripOneNewline() strips exactly one trailing newline", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(stripOneNewline(enc("pw\n\n")), enc("pw\n"));
  assert.deepEqual(stripOneNewline(enc("pw\r\n")), enc("pw"));
  assert.deepEqual(stripOneNewline(enc("pw")), enc("pw"));
});

/**
 * openssl as the v2/v3 writers ran it: `openssl dgst -<ALG> -hmac <P>` for `.hmac` files
 * (spec §4.1) and `openssl enc -e -<cipher> -md <kdf> -pass pass:<P>` (spec §6.1).
 *
 * @module
 */

import type { Plan } from "./_plan.ts";
import { runText, type Step } from "./_run.ts";

/** `openssl enc -e -<cipher> -md <kdf> -pass pass:<P>`, plus `extra` (e.g. `-z`). */
export function encryptStep(plan: Plan, extra: string[] = []): Step {
  return {
    cmd: "openssl",
    args: [
      "enc",
      "-e",
      `-${plan.cryptoAlgorithm}`,
      "-md",
      plan.kdfDigest,
      "-pass",
      `pass:${plan.passphrase}`,
      ...extra,
    ],
  };
}

/**
 * Writes `<file>.hmac`: `openssl dgst -<ALG> -hmac <P>` of `file` read from standard input. In
 * `openssl1` style the real tool's hex digest is kept and only the prefix becomes `(stdin)= `,
 * the form OpenSSL 1.0 printed; in `openssl3` style the output is kept verbatim.
 */
export async function writeHmac(plan: Plan, file: string): Promise<void> {
  const out = await runText("openssl", [
    "dgst",
    `-${plan.hmacAlgorithm}`,
    "-hmac",
    plan.passphrase,
  ], { stdinFile: file });
  const hex = /= ([0-9a-f]+)\n?$/.exec(out)?.[1];
  if (hex === undefined) throw new Error(`Cannot read the output of "openssl dgst": "${out}"`);
  const text = plan.hmacTextStyle === "openssl3" ? out : `(stdin)= ${hex}\n`;
  await Deno.writeTextFile(`${file}.hmac`, text);
}

let zlibSupport: Promise<boolean> | undefined;

/** Whether this openssl's `enc` accepts `-z` (built with zlib). */
export function opensslHasZlib(): Promise<boolean> {
  zlibSupport ??= (async () => {
    const out = await new Deno.Command("openssl", {
      args: ["enc", "-e", "-aes-256-cbc", "-md", "md5", "-pass", "pass:x", "-z"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  })();
  return zlibSupport;
}

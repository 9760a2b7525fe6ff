/**
 * Test helpers: run the real tools (openssl, scrypt) that build fixtures and serve as oracles.
 *
 * @module
 */

import { concat as concatPieces } from "../../lib/streams/mod.ts";
import { xorshiftBytes } from "../support/xorshift.ts";

/** Options of {@linkcode runTool}. */
export interface RunToolOptions {
  /** Bytes written to the tool's standard input. */
  stdin?: Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/**
 * Run a tool, feed it `stdin`, and return its standard output.
 *
 * @throws {Error} When the tool exits with a non-zero status (its stderr in the message).
 */
export async function runTool(
  command: string,
  args: string[],
  options: RunToolOptions = {},
): Promise<Uint8Array> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env === undefined ? {} : { env: options.env }),
  }).spawn();
  const writer = child.stdin.getWriter();
  const feeding = (async () => {
    if (options.stdin !== undefined) await writer.write(options.stdin);
    await writer.close();
  })();
  const [output] = await Promise.all([child.output(), feeding]);
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(`${command} ${args.join(" ")} failed (${output.code}): ${stderr}`);
  }
  return output.stdout;
}

/** `openssl enc -e` of `plain`, the way Qubes formats 2 and 3 encrypted (plus `extra` args). */
export function opensslEncrypt(
  plain: Uint8Array,
  passphrase: string,
  extra: string[] = ["-aes-256-cbc", "-md", "md5"],
): Promise<Uint8Array> {
  return runTool("openssl", ["enc", "-e", ...extra, "-pass", `pass:${passphrase}`], {
    stdin: plain,
  });
}

/** Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  return xorshiftBytes(length, seed);
}

/** Concatenate byte pieces. */
export function concatBytes(pieces: Uint8Array[]): Uint8Array {
  return concatPieces(pieces);
}

/** Cut `bytes` into pieces of `size` bytes (the last may be shorter). */
export function cutBytes(bytes: Uint8Array, size: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    pieces.push(bytes.subarray(offset, offset + size));
  }
  return pieces;
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string. */
export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/**
 * `openssl enc -e -aes-256-cbc -md md5 -S <salt>` with the `Salted__` header prepended by hand:
 * OpenSSL 3 omits the header when the salt is given, OpenSSL 1.0 (Qubes) wrote it. A fixed salt
 * makes failure tests (wrong passphrase, truncation) deterministic.
 */
export async function opensslEncryptWithSalt(
  plain: Uint8Array,
  passphrase: string,
  saltHex = "0102030405060708",
  digest = "md5",
): Promise<Uint8Array> {
  const body = await opensslEncrypt(plain, passphrase, [
    "-aes-256-cbc",
    "-md",
    digest,
    "-S",
    saltHex,
  ]);
  return concatBytes([new TextEncoder().encode("Salted__"), fromHex(saltHex), body]);
}

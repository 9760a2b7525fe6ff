// deno-lint-ignore-file no-console
/**
 * `deno task demo`: restores the small sample backup in tests/fixtures (made by the real
 * tools: GNU tar multi-volume, openssl enc, openssl dgst), lists what came back, checks every
 * file against the recorded sha256, and prints a file from inside the backup.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { catFile } from "../lib/commands/files.ts";
import { restoreBackup } from "../lib/commands/mod.ts";

const here = new URL(".", import.meta.url).pathname;

/** A VM in sample-v2.json: its files, and files inside its images (path -> sha256). */
interface VmSample {
  files: object;
  imageFiles?: Record<string, Record<string, string>>;
}
const sample = JSON.parse(await Deno.readTextFile(`${here}fixtures/sample-v2.json`));
const backup = `${here}fixtures/${sample.file}`;
const out = await Deno.makeTempDir({ prefix: "qubes-recover-demo-" });

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

try {
  console.log(`Restoring ${sample.file} (format ${sample.format}, encrypted) into ${out}`);
  const summary = await restoreBackup(backup, {
    output: out,
    passphrase: () => Promise.resolve(new TextEncoder().encode(sample.passphrase)),
    reporter: { info: (m) => console.log(`  ${m}`), warn: (m) => console.log(`  warning: ${m}`) },
  });
  console.log(
    `Restored ${summary.files} files and ${summary.links} ${
      summary.links === 1 ? "link" : "links"
    }: qubes.xml (the VM list) and the ${summary.files + summary.links - 1} below.\n`,
  );

  const expected: Array<[string, { sha256?: string; size?: number; symlink?: string }]> = [];
  for (const [name, vm] of Object.entries(sample.vms) as Array<[string, { files: object }]>) {
    for (const [file, what] of Object.entries(vm.files)) expected.push([`${name}/${file}`, what]);
  }
  for (const [file, what] of Object.entries(sample.dom0Home.files)) {
    expected.push([`dom0-home/${sample.dom0Home.user}/${file}`, what as { sha256?: string }]);
  }
  let bad = 0;
  for (const [path, what] of expected) {
    const full = `${out}/${path}`;
    let ok: boolean;
    if (what.symlink !== undefined) ok = (await Deno.readLink(full)) === what.symlink;
    else ok = (await sha256(full)) === what.sha256 && (await Deno.stat(full)).size === what.size;
    if (!ok) bad++;
    const detail = what.symlink !== undefined ? `-> ${what.symlink}` : `${what.size} bytes`;
    console.log(`  ${ok ? "ok " : "BAD"} ${path} (${detail})`);
  }
  const notes = `dom0-home/${sample.dom0Home.user}/Documents/notes.txt`;
  console.log(`\n${notes}:\n${await Deno.readTextFile(`${out}/${notes}`)}`);

  // Files inside a restored VM image, read without root or mount (qubes-recover files cat).
  for (const [name, vm] of Object.entries(sample.vms) as Array<[string, VmSample]>) {
    for (const [image, files] of Object.entries(vm.imageFiles ?? {})) {
      for (const [inside, sha] of Object.entries(files)) {
        const pieces: Uint8Array[] = [];
        await catFile(`${out}/${name}/${image}`, inside, (bytes) => {
          pieces.push(bytes.slice());
          return Promise.resolve();
        });
        const text = new TextDecoder().decode(new Uint8Array(pieces.flatMap((p) => [...p])));
        const ok = createHash("sha256").update(text).digest("hex") === sha;
        if (!ok) bad++;
        console.log(
          `/${inside} inside ${name}/${image} (files cat, no mount): ${ok ? "ok" : "BAD"}`,
        );
        console.log(text);
      }
    }
  }
  if (bad > 0) {
    console.log(`${bad} files differ from the originals`);
    Deno.exitCode = 1;
  } else {
    console.log("Every restored file matches the original bit for bit.");
  }
} finally {
  await Deno.remove(out, { recursive: true });
}

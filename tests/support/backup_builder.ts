/**
 * Builds Qubes OS backups of every format (1-4) and variant with the real tools (GNU tar,
 * openssl, gzip/bzip2/xz/zstd/pigz/pbzip2, split, scrypt, cp), invoked the way the Qubes code
 * invoked them (spec §2.1, §3, §4.1, §6.1, §8.1, §11.1, §12). Nothing here imports lib/: the
 * fixtures are the reader's independent truth.
 *
 * @example
 * ```ts
 * const built = await buildBackup({
 *   format: 3, passphrase: "qubes", encrypted: true, compressed: true,
 *   compressionFilter: "bzip2", chunkBytes: 65536,
 *   vms: [{ name: "work", qid: 5, kind: "app", dir: vmDir }],
 * }, workDir);
 * // built.path is the backup file; built.chunkNames its outer entries in order
 * ```
 *
 * @module
 */

import { writeFormat1 } from "./_format1.ts";
import { writeFormat2 } from "./_format2.ts";
import { writeFormat3 } from "./_format3.ts";
import { writeFormat4 } from "./_format4.ts";
import { planBackup } from "./_plan.ts";

/** One VM to put into a fixture backup. */
export interface FixtureVm {
  name: string;
  qid: number;
  kind: "app" | "template" | "standalone" | "net";
  /** Label name (default `green` for app/standalone, `black` for template, `red` for net). */
  label?: string;
  /** Name of the template (app and net VMs); must be another VM of the spec or `undefined`. */
  template?: string;
  /** The VM's directory as it would be under /var/lib/qubes/… */
  dir: string;
  /**
   * Items to back up, relative to `dir`, in order.
   *
   * v1-v3 non-template VMs, default: those of `private.img`, `icon.png`, `apps.templates` (or
   * `apps`), `kernels`, `firewall.xml`, `whitelisted-appmenus.list`, `root.img` that exist in
   * `dir` (spec §13.2; `apps*`, `kernels` and `root.img` only for standalone VMs). Templates:
   * `["."]`, the whole directory (chunk `vm3/..000`, members `vm3/./root.img`).
   *
   * v4, default: `root.img` (template, standalone), `private.img`, `firewall.xml`,
   * `notes.txt` that exist, or `["empty"]` (a 0-byte file) when none does (spec §13.3).
   */
  items?: string[];
  /**
   * Whether the VM's data is in the backup (default true). A VM with `false` appears in
   * qubes.xml only, with `backup_content` false and a stale `backup_path` (trap T16).
   */
  included?: boolean;
}

/** What backup to build. */
export interface FixtureSpec {
  format: 1 | 2 | 3 | 4;
  /** The passphrase; may be non-ASCII (used as UTF-8). Unused by format 1. */
  passphrase: string;
  /** v2/v3 (default false); v4 is always encrypted. */
  encrypted?: boolean;
  /** Default false. */
  compressed?: boolean;
  /**
   * v2 only (default `"r2"`):
   * - `"r2"`: header without `version` (R2-rc1 … R2), per-volume `openssl enc` OR per-volume
   *   `gzip` (R2 refused both at once);
   * - `"emergency-doc"`: header as r2, each volume gzipped THEN encrypted — the layout the v2
   *   emergency-restore page assumes (no Qubes writer produced it);
   * - `"beta3"`: no backup-header (R2-beta3); HMAC with `openssl dgst -SHA1 -hmac` (the
   *   OpenSSL 1.0 default digest; OpenSSL 3 would pick SHA256); encrypted+compressed uses
   *   `openssl enc … -z`, see `zlibEmulation`.
   */
  v2Variant?: "r2" | "emergency-doc" | "beta3";
  /** `openssl dgst -<ALG>`: default `SHA512` (v2 r2, v3), `SHA1` (v2 beta3). */
  hmacAlgorithm?: string;
  /** How `.hmac` files read: `"openssl1"` `(stdin)= <hex>` (default, as every real backup) or
   * `"openssl3"`, the real tool's output verbatim (`SHA2-512(stdin)= <hex>`). */
  hmacTextStyle?: "openssl3" | "openssl1";
  /** `openssl enc -<cipher>` (`crypto-algorithm`), default `aes-256-cbc`. */
  cryptoAlgorithm?: string;
  /** `openssl enc -md`: default `md5` (what OpenSSL 1.0 in dom0 did). */
  kdfDigest?: "md5" | "sha256";
  /** v3/v4 `--use-compress-program`: `gzip` (default), `bzip2`, `xz`, `zstd`, `pigz`, `pbzip2`,
   * or a program with arguments like `gzip -3` (written verbatim to the v3 header). */
  compressionFilter?: string;
  /** v2 `--xform`: `"old"` `s:^[^/]:<subdir>\0:` (≤ R2-rc1; default for beta3) or `"new"`
   * `s:^<base>:<subdir>\0:` (default; v3 and v4 always use it). */
  xform?: "old" | "new";
  /** v2/v3: `vm<qid>/` subdirs instead of `appvms/<name>/`…; default = `encrypted`. v4: always. */
  hideVmNames?: boolean;
  /** v2 `--tape-length` in KiB (real: 100000; tests use small values like 20..64). */
  volumeKiB?: number;
  /** v3/v4 split size in bytes (real: 100 MiB, the default; tests use small values). */
  chunkBytes?: number;
  /** v3/v4: append an empty chunk after the last one. Default (undefined): only when the item
   * stream is an exact multiple of `chunkBytes`, as Qubes did (trap T12); true: always;
   * false: never. */
  trailingEmptyChunk?: boolean;
  /** v3/v4: pass `--dereference` to tar for every item but dom0 home, as R3.1+ and R4 did
   * (default false; then every symlink in a VM item must resolve). */
  dereference?: boolean;
  /** v4: `scrypt enc --logN N -r 8 -p 1` for speed; scrypt 1.3.1 accepts 10..40 (undefined:
   * scrypt's own choice from `-t`, as Qubes ran it: about 5 s per chunk). */
  scryptLogN?: number;
  /** v4: `scrypt enc -t <seconds>` when `scryptLogN` is not given. */
  scryptMaxTime?: number;
  /**
   * v4 volume items (`*.img`): `"gnu"` (default) GNU tar old-GNU sparse members, as for file
   * pools; `"pax-sparse"`: a PAX sparse 1.0 stream standing in for qubes.tarwriter (LVM).
   * This is an EMULATION with `tar --format=posix --sparse --sparse-version=1.0` and the same
   * `--xform`: unlike tarwriter, GNU tar names the ustar member `./GNUSparseFile.<pid>/<name>`,
   * pads the stream to 10240-byte records, and writes non-sparse files as plain members.
   */
  v4Tar?: "gnu" | "pax-sparse";
  /** v2 beta3 encrypted+compressed: when this OpenSSL lacks `enc -z`, pipe `openssl enc`
   * through `pigz -z` (a zlib stream, RFC 1950) instead of failing. An EMULATION. */
  zlibEmulation?: boolean;
  vms: FixtureVm[];
  /** dom0 home to include: `basename(dir)` must equal `user` (tar runs `-C dirname(dir) user`). */
  dom0Home?: { user: string; dir: string };
  /** v4 backup-id, default `20240101T101010-4321`. */
  backupId?: string;
}

/** One backed-up item and where it went. */
export interface BuiltItem {
  /** VM name, `dom0` for the home directory, `""` for qubes.xml. */
  owner: string;
  /** `vm5/`, `appvms/work/`, `dom0-home/`, `""`. */
  subdir: string;
  /** `private.img`, `.`, the user name, `qubes.xml`. */
  base: string;
  /** Its data chunk entries in order (`vm5/private.img.000`, v4 with `.enc`; no `.hmac`). v1:
   * the copied paths. */
  chunks: string[];
}

/** The result of {@link buildBackup}. */
export interface BuiltBackup {
  /** The backup file (v2-4) or directory (v1). */
  path: string;
  /** The backup-header text, when there is one. */
  header?: string;
  /** Outer entry names in order (v1: the copied top-level paths). */
  chunkNames: string[];
  /** Every item in backup order. */
  items: BuiltItem[];
  /** The qubes.xml text in the backup. */
  qubesXml: string;
  /** v4 backup-id. */
  backupId?: string;
}

/**
 * Builds the backup described by `spec` in `workDir` (a file or, for format 1, a directory
 * named `qubes-backup`, `qubes-backup-2`, … so one work dir can hold several) and returns
 * where everything went. Staging files are removed.
 *
 * @throws {Error} when the spec asks for a combination no writer produced (v2 r2 encrypted AND
 * compressed, v4 unencrypted, …) or a tool fails.
 */
export async function buildBackup(spec: FixtureSpec, workDir: string): Promise<BuiltBackup> {
  const plan = await planBackup(spec);
  let path = `${workDir}/qubes-backup`;
  for (let n = 2;; n++) {
    try {
      await Deno.lstat(path);
      path = `${workDir}/qubes-backup-${n}`;
    } catch {
      break;
    }
  }
  const stage = await Deno.makeTempDir({ dir: workDir, prefix: ".stage-" });
  try {
    switch (spec.format) {
      case 1:
        return await writeFormat1(plan, path, stage);
      case 2:
        return await writeFormat2(plan, path, stage);
      case 3:
        return await writeFormat3(plan, path, stage);
      case 4:
        return await writeFormat4(plan, path, stage);
    }
  } finally {
    await Deno.remove(stage, { recursive: true });
  }
}

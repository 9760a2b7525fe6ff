/**
 * Helpers shared by the catalogue readers: building frozen records and the dom0 home.
 *
 * @module
 */

import { DamagedError } from "../errors.ts";
import { isSafeName } from "./safe_name.ts";
import type { Catalog, Dom0Home, VmRecord } from "./types.ts";

/** A `VmRecord` while it is being built. */
export type VmDraft = { -readonly [K in keyof VmRecord]: VmRecord[K] };

const UNSIGNED = /^[0-9]{1,16}$/;
const TRAILING_SLASHES = /\/+$/;

/** The `DamagedError` for a `qubes.xml` that parses as XML but is not a usable catalogue. */
export function damagedCatalog(detail: string, options?: ErrorOptions): DamagedError {
  return new DamagedError({ reason: "damaged", action: "read qubes.xml", detail }, options);
}

/** A decimal number written as text, or `undefined` when it is absent or not a plain number. */
export function parseUnsigned(text: string | undefined): number | undefined {
  const trimmed = text?.trim();
  return trimmed !== undefined && UNSIGNED.test(trimmed) ? Number(trimmed) : undefined;
}

/** A backup path without trailing slashes; `undefined` when nothing is left. */
export function normalizeBackupPath(path: string | undefined): string | undefined {
  const stripped = path?.trim().replace(TRAILING_SLASHES, "");
  return stripped ? stripped : undefined;
}

/** A draft record with the fields every schema sets. */
export function draftRecord(name: string, klass: string, kind: VmRecord["kind"]): VmDraft {
  return { name, safeName: isSafeName(name), klass, kind, included: false };
}

/** The dom0 home held under `backupPath` (`dom0-home/<user>`). */
export function dom0HomeAt(backupPath: string): Dom0Home {
  const user = backupPath.slice(backupPath.lastIndexOf("/") + 1);
  return Object.freeze({ user, backupPath, safeUser: isSafeName(user) });
}

/** An admin VM record for a backup whose catalogue lists no admin VM but holds a dom0 home. */
export function syntheticAdmin(klass: string, backupPath: string): VmDraft {
  return { ...draftRecord("dom0", klass, "admin"), qid: 0, included: true, backupPath };
}

/** Freezes the records into a catalogue, deriving the dom0 home from the included admin VM. */
export function finishCatalog(schema: Catalog["schema"], drafts: readonly VmDraft[]): Catalog {
  const vms = Object.freeze(drafts.map((draft) => Object.freeze({ ...draft }) as VmRecord));
  const admin = vms.find((vm) => vm.kind === "admin" && vm.included && vm.backupPath);
  return Object.freeze(
    admin?.backupPath ? { schema, vms, dom0Home: dom0HomeAt(admin.backupPath) } : { schema, vms },
  );
}

/**
 * What a backup's `qubes.xml` says about the VMs it holds.
 *
 * @module
 */

/** What a VM is, independent of the class names of a Qubes release. */
export type VmKind = "admin" | "template" | "standalone" | "app" | "disposable" | "other";

/**
 * One VM of the catalogue, in the terms the restore needs. Records are frozen.
 *
 * @example
 * ```ts
 * const vm: VmRecord = {
 *   name: "work", safeName: true, klass: "AppVM", kind: "app", included: true,
 *   backupPath: "vm12",
 * };
 * ```
 */
export interface VmRecord {
  /** The VM name; `"dom0"` for the admin VM. May be empty when the document lacks it. */
  readonly name: string;
  /**
   * Whether `name` can be used as a folder name (see `isSafeName`). An unsafe name is kept so
   * that the restore can refuse it with a clear message.
   */
  readonly safeName: boolean;
  /** The qube id, when the document gives one (core3 dom0: 0). */
  readonly qid?: number;
  /** The class as written: `QubesAppVm`, `QubesTemplateHVm` (core2), `AppVM`, `DispVM` (core3). */
  readonly klass: string;
  /** What the VM is. */
  readonly kind: VmKind;
  /** The template's name (core2: resolved through `template_qid`). */
  readonly template?: string;
  /** The label name (core3: resolved through the `<labels>` table). */
  readonly label?: string;
  /** Whether this backup holds the VM's data. */
  readonly included: boolean;
  /**
   * The VM's folder inside the backup, without a trailing slash: `vm5`, `appvms/work`,
   * `dom0-home/alice`. Only meaningful when `included` (core2 leaves stale values behind).
   */
  readonly backupPath?: string;
  /** The size the backup tool estimated, in bytes (informative only, never a limit). */
  readonly backupSize?: number;
  /** Core2 only: `dir_path` as written, e.g. `/var/lib/qubes/appvms/work`. */
  readonly dirPath?: string;
  /**
   * Core3 only: the volumes an R4 backup holds for this VM (those with `save_on_stop`), as
   * listed by its `<volume-config>`, e.g. `["private"]`; absent when it has no such element.
   */
  readonly backupVolumes?: readonly string[];
}

/** The dom0 home directory held in a backup. */
export interface Dom0Home {
  /** The dom0 user name (last component of the backup path). */
  readonly user: string;
  /** Its folder inside the backup: `dom0-home/<user>`. */
  readonly backupPath: string;
  /** Whether `user` can be used as a folder name (see `isSafeName`). */
  readonly safeUser: boolean;
}

/** A parsed `qubes.xml`. Frozen, so that lookups can be cached. */
export interface Catalog {
  /** `core2` for `<QubesVmCollection>` (formats 1-3), `core3` for `<qubes>` (format 4). */
  readonly schema: "core2" | "core3";
  /** Every VM element, in document order. */
  readonly vms: readonly VmRecord[];
  /** The dom0 home, when the admin VM is included and has a backup path. */
  readonly dom0Home?: Dom0Home;
}

/**
 * Which VM of a catalogue an outer-archive entry or an inner tar member belongs to.
 *
 * @module
 */

import type { Catalog, VmRecord } from "./types.ts";

/** The VM owning a name, and the name with the VM's backup path (and one `/`) removed. */
export interface Owner {
  /** The included VM whose backup path is a prefix of the name. */
  readonly vm: VmRecord;
  /** The rest of the name: `private.img.000`, `..000` (dom0: `.000`, or a path in the home). */
  readonly rest: string;
}

// The dom0 home is one item named after the user, so its chunks are `<path>.<NNN>[.enc]`.
const DOM0_CHUNK_SUFFIX = /\.[0-9]+(?:\.enc)?(?:\.hmac)?$/;
// R2-beta3 hid template folders as `vm<N>` without the slash: `vm3./root.img`, `vm3..000`.
const HIDDEN_TEMPLATE_ALIAS = /^vm[0-9]+(?=\.[./])/;

const indexes = new WeakMap<Catalog, ReadonlyMap<string, VmRecord>>();

/**
 * The included VM whose backup path owns `name`, matching whole path components: `vm5` owns
 * `vm5/private.img` and `vm5/..000` but not `vm50/x`. The dom0 home `dom0-home/alice` owns
 * its chunks `dom0-home/alice.000[.enc]` and its members `dom0-home/alice/…`, not
 * `dom0-home/alice0.000`. The R2-beta3 alias `vm3./root.img` (for `vm3/./root.img`) and
 * `vm3..000` belong to `vm3`. When paths nest, the longest wins; VMs not included never own
 * anything (their core2 paths may be stale).
 *
 * Lookups cost a few map probes per `/` in `name` (the catalogue is indexed once).
 *
 * @param catalog A catalogue from `parseQubesXml` or `catalogForFormat1`.
 * @param name An outer entry name or an inner member name.
 * @returns The owner and the rest of the name after the prefix, or `undefined`.
 *
 * @example
 * ```ts
 * ownerOf(catalog, "vm5/private.img.003"); // { vm: <vm5>, rest: "private.img.003" }
 * ownerOf(catalog, "dom0-home/alice.000"); // { vm: <dom0>, rest: ".000" }
 * ```
 */
export function ownerOf(catalog: Catalog, name: string): Owner | undefined {
  const index = indexFor(catalog);
  if (index.size === 0) return undefined;
  const exact = index.get(name);
  if (exact) return { vm: exact, rest: "" };
  const chunk = DOM0_CHUNK_SUFFIX.exec(name);
  if (chunk) {
    const vm = index.get(name.slice(0, chunk.index));
    if (vm?.kind === "admin") return { vm, rest: chunk[0] };
  }
  for (let slash = name.lastIndexOf("/"); slash > 0; slash = name.lastIndexOf("/", slash - 1)) {
    const vm = index.get(name.slice(0, slash));
    if (vm) return { vm, rest: name.slice(slash + 1) };
  }
  const alias = HIDDEN_TEMPLATE_ALIAS.exec(name);
  if (alias) {
    const vm = index.get(alias[0]);
    if (vm && vm.kind !== "admin") return { vm, rest: name.slice(alias[0].length) };
  }
  return undefined;
}

function indexFor(catalog: Catalog): ReadonlyMap<string, VmRecord> {
  let index = indexes.get(catalog);
  if (!index) {
    const paths = new Map<string, VmRecord>();
    for (const vm of catalog.vms) {
      if (vm.included && vm.backupPath && !paths.has(vm.backupPath)) paths.set(vm.backupPath, vm);
    }
    index = paths;
    if (Object.isFrozen(catalog) && Object.isFrozen(catalog.vms)) indexes.set(catalog, index);
  }
  return index;
}

/**
 * Which inner member names an item may hold. Outer names are not authenticated in formats 2
 * and 3 (trap T34), but inner member names are: a member outside its item's path means the
 * chunks were swapped or forged, and it is refused.
 *
 * @module
 */

/**
 * Normalises a backup path: drops `.` and empty components, and reads the R2-beta3 template
 * alias `vm3.` as `vm3` (trap T27).
 *
 * @example
 * ```ts
 * normaliseName("vm3/./root.img"); // "vm3/root.img"
 * ```
 */
export function normaliseName(name: string): string {
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.length > 0 && /^vm[0-9]+\.$/.test(parts[0]!)) parts[0] = parts[0]!.slice(0, -1);
  return parts.join("/");
}

/**
 * Whether a member belongs to an item: it is the item itself or lies below it.
 *
 * @param item Item name from the chunk names (`vm5/private.img`, `vm3/.`, `dom0-home/alice`).
 * @param member Inner tar member name.
 *
 * @example
 * ```ts
 * memberInItem("vm3/.", "vm3/./root.img"); // true
 * memberInItem("vm5/private.img", "vm6/private.img"); // false
 * ```
 */
export function memberInItem(item: string, member: string): boolean {
  const scope = normaliseName(item);
  const name = normaliseName(member);
  return name === scope || name.startsWith(scope + "/");
}

/**
 * Whether tests can mount a small tmpfs (to fill a disk) in a private user namespace.
 *
 * @module
 */

/**
 * Whether this machine lets an unprivileged user namespace mount a tmpfs (not, for example,
 * inside a plain chroot). Throws when `unshare` itself is missing.
 */
export async function canMountTmpfs(): Promise<boolean> {
  try {
    const probe = new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /tmp"],
      stdout: "null",
      stderr: "null",
    });
    return (await probe.output()).success;
  } catch (error) {
    // A missing tool is an error, not a reason to skip; a kernel that refuses is.
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("unshare not found: install the Debian package util-linux");
    }
    return false;
  }
}

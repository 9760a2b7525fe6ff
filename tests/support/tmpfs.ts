/**
 * Whether tests can mount a small tmpfs (to fill a disk) in a private user namespace.
 *
 * @module
 */

/** Whether this machine lets an unprivileged user namespace mount a tmpfs. */
export async function canMountTmpfs(): Promise<boolean> {
  try {
    const probe = new Deno.Command("unshare", {
      args: ["-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /tmp"],
      stdout: "null",
      stderr: "null",
    });
    return (await probe.output()).success;
  } catch {
    return false;
  }
}

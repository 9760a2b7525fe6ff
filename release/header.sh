#!/bin/sh
# qubes-recover for @ARCH@ Linux, built from source commit @COMMIT@.
#
# This file is a POSIX shell script followed by a payload: the Deno @DENO@ runtime and the
# bundled qubes-recover program, each gzip-compressed. When run, the script unpacks them into a
# private temporary folder (mktemp -d under TMPDIR, default /tmp), checks their SHA-256 sums
# (listed below), runs the program with the permissions of `deno task recover`, no network and
# no permission prompts, and removes the folder when the program ends (also on Ctrl-C, SIGTERM
# and SIGHUP), passing on its exit code. It needs sh, coreutils and gzip, nothing else: no
# Node, no Deno, no network, no root, no writable home. See docs/release.md in the sources.
set -u
PATH=${PATH:-/usr/local/bin:/usr/bin:/bin}
payload=@OFFSET@ # bytes before the payload (the size of this script)
arch=@ARCH@

say() { printf 'qubes-recover: %s\n' "$*" >&2; }
fail() {
  say "$@"
  exit 1
}

self=$0
[ -f "$self" ] && [ -r "$self" ] || fail "cannot read this file (\"$self\"): run it by its path, e.g. ./qubes-recover-$arch-linux"

machine=$(uname -m 2>/dev/null || echo unknown)
case $machine in
  x86_64 | amd64) host=x86_64 ;;
  aarch64 | arm64 | armv8*) host=aarch64 ;;
  *) host=$machine ;;
esac
[ "$host" = "$arch" ] || fail "this file is for $arch Linux, this machine is $machine: use qubes-recover-$host-linux"

base=${TMPDIR:-/tmp}
dir=
child=
cleanup() {
  [ -n "$dir" ] && rm -rf "$dir"
}
trap cleanup EXIT
# Ctrl-C reaches the program too, which removes its unfinished files and exits 130.
trap '[ -n "$child" ] || exit 130' INT
trap 'if [ -n "$child" ]; then kill -HUP "$child" 2>/dev/null; else exit 129; fi' HUP
trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; else exit 143; fi' TERM

dir=$(mktemp -d "$base/qubes-recover.XXXXXXXX" 2>/dev/null) || {
  dir=
  fail "cannot create a temporary folder in \"$base\" (it must be writable, with about @SPACE@ MB free): set TMPDIR to such a folder, e.g. TMPDIR=\$HOME $self ..."
}
noroom() {
  fail "cannot unpack into \"$base\": it needs about @SPACE@ MB free (set TMPDIR to a folder with room, e.g. TMPDIR=\$HOME $self ...), or this file is damaged or incomplete (compare it with SHA256SUMS)"
}

# A folder on a filesystem mounted noexec can hold the runtime but not run it.
printf '#!/bin/sh\nexit 0\n' >"$dir/probe" 2>/dev/null && chmod 700 "$dir/probe" || noroom
"$dir/probe" 2>/dev/null || fail "cannot run programs in \"$base\" (mounted noexec?): set TMPDIR to a writable folder where programs may run, e.g. TMPDIR=\$HOME $self ..."
rm -f "$dir/probe"

# name, offset in the payload, compressed length, SHA-256 of the unpacked file
while read -r name offset length sum; do
  tail -c +$((payload + offset + 1)) "$self" | head -c "$length" | gzip -dc >"$dir/$name" 2>/dev/null || noroom
  got=$(sha256sum "$dir/$name") || noroom
  [ "${got%% *}" = "$sum" ] || fail "\"$name\" unpacked from this file does not match its SHA-256 sum: this file is damaged (compare it with SHA256SUMS)"
done <<'FILES'
@FILES@
FILES
chmod 700 "$dir/deno" || noroom

exec 3<&0
DENO_DIR="$dir/cache" DENO_NO_UPDATE_CHECK=1 DENO_NO_PACKAGE_JSON=1 \
  "$dir/deno" run @RUNFLAGS@ --import-map="$dir/import_map.json" "$dir/main.js" "$@" 0<&3 3<&- &
child=$!
exec 3<&-
while :; do
  wait "$child"
  code=$?
  kill -0 "$child" 2>/dev/null || break
done
child=
exit "$code"

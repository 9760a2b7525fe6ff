/**
 * The competitors: bash scripts that restore `private.img` with the real tools only.
 *
 * - `manual`: the Qubes emergency-restore page of the format, step by step with files in
 *   between (qubes-doc `backup-emergency-restore-v2/-v3/-v4`), every HMAC verified.
 * - `native`: the best one-pass pipeline we could write with the same tools (untar once, then
 *   stream; HMACs or scrypt KDFs overlapped with decoding on the other core).
 *
 * Every script reads its inputs from the environment: `BACKUP` (the backup file), `WORK` (an
 * empty scratch folder on the same disk), `OUT` (the output folder, where tar puts
 * `vmN/private.img`), `ITEM` (the item path in the backup, `vm5/private.img`), `BENCH_PASS`
 * (the passphrase) and `NPROC`. Where a page passes the passphrase as `pass:"$backup_pass"`
 * the script does the same.
 *
 * @module
 */

/** Which procedure a script follows. */
export type Competitor = "manual" | "native";

const PRELUDE = `set -euo pipefail
cd "$WORK"
backup_pass=$BENCH_PASS
# The page's check, made automatic: the hex after "=" of our openssl dgst must equal the .hmac's.
verify() {
  local want got
  want=$(sed 's/.*= *//' "$1.hmac" | tr -d '\\n')
  got=$(openssl dgst -sha512 -hmac "$backup_pass" < "$1" | sed 's/.*= *//')
  [ "$got" = "$want" ] || { echo "HMAC mismatch: $1" >&2; return 1; }
}
`;

/** The v2 page's new-volume script; `$[ ]` is a bash-ism, so it runs under bash, not sh. */
const PAGE_NEW_VOLUME_SCRIPT = `#!/bin/bash
name=\`expr $TAR_ARCHIVE : '\\(.*\\)\\..*'\`
suffix=\`printf %03d $[ $TAR_VOLUME - 1 ]\`
echo $name.$suffix >&$TAR_FD
`;

/**
 * Format 2, emergency page v2: untar; verify every HMAC; `openssl enc -d` each part to a
 * file; `zforce` and `gunzip` every part; `tar -M` with the page's new-volume script.
 */
const MANUAL_2 = `${PRELUDE}
tar -i -xf "$BACKUP"
for h in $(find . -name '*.hmac' | sort -V); do verify "\${h%.hmac}"; done
cd "$(dirname "$ITEM")"
base=$(basename "$ITEM")
find -name "$base.*" ! -name '*.hmac' | sort -V | while read f; do
  openssl enc -d -md MD5 -pass pass:"$backup_pass" -aes-256-cbc -in $f -out \${f/.img/.img.dec}
done
zforce $base.dec.* > /dev/null
gunzip $base.dec.*.gz
cat > new-volume-script <<'EOF'
${PAGE_NEW_VOLUME_SCRIPT}EOF
chmod +x new-volume-script
tar -C "$OUT" --new-volume-script="$PWD/new-volume-script" -xf "$PWD/$base.dec.000"
`;

/**
 * Format 2, best one pass: untar once; then per volume `openssl enc -d | gzip -d` into a FIFO
 * that `tar -xM` reads as that volume, while the next part's HMAC is checked in the background.
 */
const NATIVE_2 = `${PRELUDE}
tar -i -xf "$BACKUP"
verify backup-header
verify qubes.xml.000
mapfile -t parts < <(ls "$ITEM".* | grep -v '[.]hmac$' | sort -V)
n=\${#parts[@]}
mkdir fifo
for ((k = 1; k <= n; k++)); do mkfifo "fifo/$(printf %03d $k)"; done
cat > nv.sh <<'EOF'
#!/bin/sh
printf '%s/%03d\\n' "$FIFO_DIR" "$TAR_VOLUME" >&"$TAR_FD"
EOF
chmod +x nv.sh
FIFO_DIR="$PWD/fifo" tar -C "$OUT" -xM -F "$PWD/nv.sh" -f "$PWD/fifo/001" &
tar_pid=$!
verify "\${parts[0]}"
for ((k = 0; k < n; k++)); do
  if ((k + 1 < n)); then verify "\${parts[k + 1]}" & hmac_pid=$!; fi
  openssl enc -d -aes-256-cbc -md md5 -pass env:BENCH_PASS -in "\${parts[k]}" | gzip -d \\
    > "fifo/$(printf %03d $((k + 1)))"
  if ((k + 1 < n)); then wait $hmac_pid; fi
done
wait $tar_pid
`;

/**
 * Format 3, emergency page v3: untar; verify the header and every part; `cat parts | openssl
 * enc -d` to a file; `zforce` + `gunzip`; `tar -x`.
 */
const MANUAL_3 = `${PRELUDE}
tar -i -xf "$BACKUP"
verify backup-header
verify qubes.xml.000
cd "$(dirname "$ITEM")"
base=$(basename "$ITEM")
for h in $(find . -name "$base.*.hmac" | sort -V); do verify "\${h%.hmac}"; done
find -name "$base.*[0-9]" | sort -V | xargs cat | \\
  openssl enc -d -md MD5 -pass pass:"$backup_pass" -aes-256-cbc -out $base.dec
zforce $base.dec > /dev/null
gunzip $base.dec.gz
tar -C "$OUT" -xf $base.dec
`;

/**
 * Format 3, best one pass: untar once; `cat parts | openssl enc -d | gzip -d | tar -x`, each
 * part released to cat only after its HMAC matched; the next part's HMAC runs meanwhile.
 */
const NATIVE_3 = `${PRELUDE}
tar -i -xf "$BACKUP"
verify backup-header
verify qubes.xml.000
mapfile -t parts < <(ls "$ITEM".* | grep -v '[.]hmac$' | sort -V)
n=\${#parts[@]}
{
  verify "\${parts[0]}"
  for ((k = 0; k < n; k++)); do
    if ((k + 1 < n)); then verify "\${parts[k + 1]}" & hmac_pid=$!; fi
    cat "\${parts[k]}"
    if ((k + 1 < n)); then wait $hmac_pid; fi
  done
} | openssl enc -d -aes-256-cbc -md md5 -pass env:BENCH_PASS | gzip -d | tar -C "$OUT" -x
`;

/**
 * Format 4, emergency page v4: untar; `scrypt dec` of backup-header.hmac and compare; qubes.xml
 * through `scrypt dec | gzip -d | tar -x`; then the page's sequential loop
 * `scrypt dec -P part` for every part into `gzip -d | tar -x`.
 */
const MANUAL_4 = `${PRELUDE}
tar -i -xf "$BACKUP"
echo "backup-header!$backup_pass" | scrypt dec -P backup-header.hmac backup-header.verified
diff -q backup-header backup-header.verified
backup_id=$(sed -n 's/^backup-id=//p' backup-header)
echo "$backup_id!qubes.xml.000!$backup_pass" | scrypt dec -P qubes.xml.000.enc | gzip -d | tar -x
find "$(dirname "$ITEM")/" -name "$(basename "$ITEM").*.enc" | sort -V | while read f_enc; do
  f_dec=\${f_enc%.enc}
  echo "$backup_id!$f_dec!$backup_pass" | scrypt dec -P $f_enc || break
done | gzip -d | tar -C "$OUT" -x
`;

/**
 * Format 4, best native: untar; every scrypt file (header, qubes.xml, parts) decrypted by
 * \`NPROC\` parallel \`scrypt dec\` jobs into files, while the parts are streamed in order,
 * each as soon as it is complete, into \`gzip -d | tar -x\`.
 */
const NATIVE_4 = `${PRELUDE}
tar -i -xf "$BACKUP"
backup_id=$(sed -n 's/^backup-id=//p' backup-header)
mkdir dec
mapfile -t parts < <(ls "$ITEM".*.enc | sort -V)
export backup_id
{
  echo "backup-header.hmac backup-header!$backup_pass"
  echo "qubes.xml.000.enc $backup_id!qubes.xml.000!$backup_pass"
  for f in "\${parts[@]}"; do echo "$f $backup_id!\${f%.enc}!$backup_pass"; done
} | xargs -P "$NPROC" -L 1 sh -c '
  out="dec/$(echo "$0" | tr / _)"
  if echo "$1" | scrypt dec -P "$0" "$out.part"; then mv "$out.part" "$out"; else : > "$out.fail"; fi
' &
jobs_pid=$!
wait_for() {
  while [ ! -e "$1" ]; do
    [ -e "$1.fail" ] && { echo "scrypt failed: $1" >&2; return 1; }
    sleep 0.02
  done
}
for f in "\${parts[@]}"; do
  d="dec/$(echo "$f" | tr / _)"
  wait_for "$d"
  cat "$d"
  rm "$d"
done | gzip -d | tar -C "$OUT" -x
wait $jobs_pid
wait_for dec/backup-header.hmac
cmp -s backup-header dec/backup-header.hmac
wait_for dec/qubes.xml.000.enc
gzip -d < dec/qubes.xml.000.enc | tar -x
`;

const SCRIPTS: Record<2 | 3 | 4, Record<Competitor, string>> = {
  2: { manual: MANUAL_2, native: NATIVE_2 },
  3: { manual: MANUAL_3, native: NATIVE_3 },
  4: { manual: MANUAL_4, native: NATIVE_4 },
};

/** The bash script of `competitor` for backups of `format`. */
export function scriptFor(format: 2 | 3 | 4, competitor: Competitor): string {
  return SCRIPTS[format][competitor];
}

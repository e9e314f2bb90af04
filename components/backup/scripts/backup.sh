#!/bin/sh
# The backup job: a consistent copy of headscale's database (sqlite's online backup, while
# headscale runs) and its private keys, checked, packed, encrypted to the stack's age
# recipient here at home, and stored on the VPS through the SFTP-only backup account. The
# upload lands under a .part name and is renamed when complete, so a full disk or a cut
# connection leaves no half backup, and the older ones are only pruned after a good upload.
#
# Environment: see lib.sh, and KEEP (how many backups the VPS keeps).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

main() {
    : "${DATA_DIR:?}" "${CREDENTIALS_DIR:?}" "${STORE_HOST:?}" "${STORE_PORT:?}" "${STORE_USER:?}" "${STORE_DIR:?}" "${KEEP:?}"
    ensure_tools sqlite3 age sftp
    new_workdir
    private_ssh_key
    [ -f "$DATA_DIR/$database" ] || fail "no database at $DATA_DIR/$database: nothing to back up"

    name="headscale-$(date -u +%Y%m%dT%H%M%SZ).tar.age"
    mkdir "$work/backup"
    sqlite3 "$DATA_DIR/$database" ".backup '$work/backup/$database'" || fail "sqlite3 could not copy $DATA_DIR/$database"
    check=$(sqlite3 "$work/backup/$database" "PRAGMA integrity_check;")
    [ "$check" = ok ] || fail "the copy of the database fails its integrity check: $check"
    for file in $key_files; do
        [ ! -f "$DATA_DIR/$file" ] || cp "$DATA_DIR/$file" "$work/backup/$file"
    done
    (cd "$work/backup" && sha256sum -- * >SHA256SUMS)
    tar -C "$work/backup" -cf - . | age --encrypt --recipients-file "$CREDENTIALS_DIR/recipient" --output "$work/$name"
    size=$(wc -c <"$work/$name" | tr -d ' ')

    if ! errors=$(printf 'put %s %s\nrename %s %s\n' "$work/$name" "$STORE_DIR/$name.part" "$STORE_DIR/$name.part" "$STORE_DIR/$name" | sftp_batch 2>&1); then
        # What a failed upload left behind; the older backups are untouched.
        printf -- '-rm %s\n' "$STORE_DIR/$name.part" | sftp_batch >/dev/null 2>&1 || true
        # SFTP reports a full disk as a bare "Failure": the free space says what it was.
        reason=$(printf '%s\n' "$errors" | sftp_error)
        free=$(free_kib) && reason="$reason; the store has $free KiB free"
        fail "could not store $name on $STORE_HOST: $reason"
    fi

    stored=$(list_backups 2>"$work/errors") || fail "stored $name, but could not list the backups on $STORE_HOST: $(sftp_error <"$work/errors")"
    count=$(printf '%s\n' "$stored" | grep -c . || true)
    if [ "$count" -gt "$KEEP" ]; then
        printf '%s\n' "$stored" | head -n "$((count - KEEP))" | sed "s|^|rm $STORE_DIR/|" | sftp_batch >/dev/null ||
            fail "stored $name, but could not delete the backups beyond the last $KEEP"
        count=$KEEP
    fi
    log "stored $name ($size bytes, encrypted) on $STORE_HOST; $count backups kept there, the last good one is this one"
}

# The store's free space in KiB, from sftp's df: "Size Used Avail (root) %Capacity".
free_kib() {
    printf 'df %s\n' "$STORE_DIR" | sftp_batch 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3; found = 1 } END { exit !found }'
}

main "$@"

#!/bin/sh
# The restore job: fetch one backup from the VPS (a name, or "latest"), decrypt it with the
# stack's age identity, and check it: the archive holds only what a backup holds, every file
# matches SHA256SUMS, and the database passes sqlite's integrity check. Only then is it staged
# on headscale's volume as restore-ready/, which headscale's init container moves into place
# on its next start. A backup that fails any check is refused, and the volume is not touched.
#
#   restore.sh NAME|latest
# Environment: see lib.sh, IDENTITY_FILE (the age identity) and DATA_OWNER (headscale's uid:gid).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

main() {
    [ $# -eq 1 ] || fail "usage: restore.sh NAME|latest"
    : "${DATA_DIR:?}" "${CREDENTIALS_DIR:?}" "${STORE_HOST:?}" "${STORE_PORT:?}" "${STORE_USER:?}" "${STORE_DIR:?}" "${IDENTITY_FILE:?}" "${DATA_OWNER:?}"
    ensure_tools sqlite3 age sftp
    new_workdir
    private_ssh_key

    name=$1
    if [ "$name" = latest ]; then
        listing=$(list_backups 2>"$work/errors") || fail "could not list the backups on $STORE_HOST: $(sftp_error <"$work/errors")"
        name=$(printf '%s\n' "$listing" | tail -n 1)
        [ -n "$name" ] || fail "there is no backup on $STORE_HOST to restore"
    fi
    printf '%s\n' "$name" | grep -q -e "$name_pattern" || fail "$name is not the name of a backup"
    log "fetching $name from $STORE_HOST"
    printf 'get %s %s\n' "$STORE_DIR/$name" "$work/$name" | sftp_batch >/dev/null 2>"$work/errors" ||
        fail "could not fetch $name from $STORE_HOST: $(sftp_error <"$work/errors")"

    age --decrypt --identity "$IDENTITY_FILE" --output "$work/backup.tar" "$work/$name" 2>"$work/errors" ||
        fail "refused $name: it does not decrypt with this stack's backup identity ($(head -n 1 "$work/errors"))"
    members=$(tar -tf "$work/backup.tar") || fail "refused $name: it is not a tar archive"
    for member in $members; do
        case ${member#./} in
        "" | "$database" | SHA256SUMS | noise_private.key | derp_server_private.key) ;;
        *) fail "refused $name: it holds $member, which a backup does not" ;;
        esac
    done
    mkdir "$work/backup"
    tar -C "$work/backup" -xf "$work/backup.tar"
    if [ ! -f "$work/backup/$database" ] || [ ! -f "$work/backup/SHA256SUMS" ]; then
        fail "refused $name: it lacks the database or SHA256SUMS"
    fi
    (cd "$work/backup" && sha256sum -c SHA256SUMS >/dev/null 2>&1) || fail "refused $name: its files do not match their SHA256SUMS"
    check=$(sqlite3 "$work/backup/$database" "PRAGMA integrity_check;" 2>&1) || true
    [ "$check" = ok ] || fail "refused $name: its database fails sqlite's integrity check: $check"

    # Staged under a temporary name and renamed: headscale's init container sees all or nothing.
    rm -rf "$DATA_DIR/restore-staging" "$DATA_DIR/restore-ready"
    mkdir "$DATA_DIR/restore-staging"
    for file in "$database" $key_files; do
        [ ! -f "$work/backup/$file" ] || cp -p "$work/backup/$file" "$DATA_DIR/restore-staging/$file"
    done
    printf '%s\n' "$name" >"$DATA_DIR/restore-staging/NAME"
    chown -R "$DATA_OWNER" "$DATA_DIR/restore-staging"
    mv "$DATA_DIR/restore-staging" "$DATA_DIR/restore-ready"
    log "verified $name and staged it; headscale takes it on its next start"
}

main "$@"

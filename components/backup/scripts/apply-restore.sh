#!/bin/sh
# headscale's init container: if a restore job staged a verified backup (restore-ready/),
# move the current database, its WAL and the keys aside into pre-restore-<time>/ (with a
# replaced-by file naming the backup) and the backup's files into place, before headscale
# starts. Otherwise do nothing.
#
# Environment: DATA_DIR, headscale's volume.
set -eu

main() {
    : "${DATA_DIR:?}"
    ready="$DATA_DIR/restore-ready"
    [ -d "$ready" ] || exit 0
    aside="$DATA_DIR/pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir "$aside"
    # The old WAL must go with the old database: sqlite would replay it into the restored one.
    for file in db.sqlite db.sqlite-wal db.sqlite-shm noise_private.key derp_server_private.key; do
        [ ! -e "$DATA_DIR/$file" ] || mv "$DATA_DIR/$file" "$aside/"
    done
    for file in db.sqlite noise_private.key derp_server_private.key; do
        [ ! -e "$ready/$file" ] || mv "$ready/$file" "$DATA_DIR/$file"
    done
    name=$(cat "$ready/NAME" 2>/dev/null || echo "a backup")
    # The set-aside data says what replaced it, for whoever looks at the volume later.
    printf '%s\n' "$name" >"$aside/replaced-by"
    printf 'overlay-backup: restored %s; the data it replaced is in %s\n' "$name" "$aside"
    rm -rf "$ready"
}

main "$@"

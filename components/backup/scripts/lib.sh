#!/bin/sh
# Shared by the backup and restore jobs (POSIX sh: Alpine's busybox runs them). Sourced.
#
# Environment, from the job's manifest:
#   DATA_DIR         headscale's volume
#   CREDENTIALS_DIR  ssh-key, known_hosts and recipient (the age public key)
#   STORE_HOST, STORE_PORT, STORE_USER, STORE_DIR   the backup account on the VPS
# shellcheck disable=SC2034 # the scripts that source this use the names

set -eu

log() { printf 'overlay-backup: %s\n' "$*"; }
fail() {
    printf 'overlay-backup: error: %s\n' "$*" >&2
    exit 1
}

# What a backup holds, besides SHA256SUMS: headscale's database and its two private keys.
readonly database=db.sqlite
readonly key_files="noise_private.key derp_server_private.key"
readonly name_pattern='^headscale-[0-9]\{8\}T[0-9]\{6\}Z\.tar\.age$'

# --- the tools the job needs; on Alpine the missing ones are added from its repository ---
ensure_tools() {
    missing=""
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
    [ -n "$missing" ] || return 0
    command -v apk >/dev/null 2>&1 || fail "the backup image lacks:$missing (it needs sqlite3, age and sftp, or Alpine's apk to add them)"
    packages=""
    for tool in $missing; do
        case $tool in
        sqlite3) packages="$packages sqlite" ;;
        sftp) packages="$packages openssh-client-default" ;;
        *) packages="$packages $tool" ;;
        esac
    done
    log "adding from Alpine's repository:$packages"
    # shellcheck disable=SC2086 # one word per package
    apk add --no-cache --quiet $packages || fail "apk add$packages failed"
}

# --- one SFTP session with the batch on stdin; fails on the first failing command ---
# (LogLevel ERROR rather than -q, which would also hide why ssh could not connect.)
sftp_batch() {
    sftp -b - -o LogLevel=ERROR \
        -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
        -o "UserKnownHostsFile=$CREDENTIALS_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null \
        -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=3 \
        -i "$ssh_key" -P "$STORE_PORT" "$STORE_USER@$STORE_HOST"
}

# --- what went wrong in a batch, from its output on stdin: the first two lines that are
# neither sftp's echo of a command nor empty, on one line ---
sftp_error() {
    tr -d '\r' | awk 'NF && !/^sftp> / && n < 2 { printf "%s%s", (n++ ? "; " : ""), $0 } END { if (!n) printf "no reason given" }'
}

# --- the backups on the VPS, oldest first, one name per line ---
list_backups() {
    listing=$(printf 'ls -1 %s\n' "$STORE_DIR" | sftp_batch) || return 1
    printf '%s\n' "$listing" | sed -n 's|^.*/||p' | grep -e "$name_pattern" | sort || true
}

# ssh refuses a key that others may read; the Secret's files are group-readable for the job.
private_ssh_key() {
    ssh_key="$work/ssh-key"
    cp "$CREDENTIALS_DIR/ssh-key" "$ssh_key"
    chmod 0600 "$ssh_key"
}

new_workdir() {
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
}

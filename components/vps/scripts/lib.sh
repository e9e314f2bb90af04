#!/usr/bin/env bash
# Helpers shared by the VPS steps. The program sends this file, then one step script, then
# the line that calls the step's main with its arguments, on stdin to
# `bash -s -- apply|remove`. Nothing runs until that last line: a truncated copy does nothing.
# shellcheck disable=SC2317 # some functions are called through "$@" (install_validated)
set -euo pipefail

# --- log to stderr ---
info() { printf 'overlay: %s\n' "$*" >&2; }
fatal() { printf 'overlay: error: %s\n' "$*" >&2; exit 1; }

# --- check prerequisites first, naming what is missing ---
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || fatal "this step needs '$1', which is not installed"
}

need_root() {
    [[ $(id -u) -eq 0 ]] || fatal "this step must run as root (or through passwordless sudo)"
}

need_sshd() {
    [[ -x /usr/sbin/sshd ]] || fatal "OpenSSH server is not installed at /usr/sbin/sshd"
}

# --- install distribution packages that are missing ---
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    info "installing from the distribution: ${missing[*]}"
    # Steps run in parallel, and a fresh VPS may be busy with unattended-upgrades: wait for
    # the package system instead of failing on its lock.
    (
        flock -w 600 9 || fatal "the package system stayed busy for 10 minutes"
        # A fresh VPS image often ships without package lists.
        apt-get -o DPkg::Lock::Timeout=600 update -qq
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    ) 9>/run/lock/overlay-packages.lock
}

# --- the arguments after the action: `--file PATH CONTENT` pairs are staged in a scratch
# directory (removed on exit), the rest are kept in order in `params` ---
stage_arguments() {
    workdir=$(mktemp -d)
    trap 'rm -rf "$workdir"' EXIT
    params=()
    while (($#)); do
        if [[ $1 == --file ]]; then
            (($# >= 3)) || fatal "--file needs a path and its content"
            mkdir -p "$workdir/files$(dirname "$2")"
            printf '%s' "$3" >"$workdir/files$2"
            shift 3
        else
            params+=("$1")
            shift
        fi
    done
}

# --- the staged content for a target path; fails if the program did not send it ---
staged() {
    [[ -f $workdir/files$1 ]] || fatal "the program sent no content for $1"
    printf '%s' "$workdir/files$1"
}

# --- install a file, owned by root, if its content differs; returns 0 when the file changed
# (a mode or owner set right again alone is no change) ---
# Usage: install_file SOURCE PATH MODE
install_file() {
    local source="$1" path="$2" mode="$3" tmp
    if [[ -f $path ]] && cmp -s "$source" "$path"; then
        [[ $(stat -c %a "$path") == "${mode#0}" ]] || chmod "$mode" "$path"
        [[ $(stat -c %u:%g "$path") == 0:0 ]] || chown root:root "$path"
        return 1
    fi
    install -d -m 0755 "$(dirname "$path")"
    tmp=$(mktemp "$path.XXXXXX")
    chmod "$mode" "$tmp"
    cat "$source" >"$tmp"
    mv -f "$tmp" "$path"
    return 0
}

# --- install a config file, have its daemon check it, put the old one back on failure ---
# Usage: install_validated SOURCE PATH MODE VALIDATOR...; returns 0 when the file changed.
install_validated() {
    local source="$1" path="$2" mode="$3" backup="" output
    shift 3
    if [[ -f $path ]]; then
        backup="$workdir/previous.$(basename "$path")"
        cp -p "$path" "$backup"
    fi
    install_file "$source" "$path" "$mode" || return 1
    if ! output=$("$@" 2>&1); then
        if [[ -n $backup ]]; then cp -p "$backup" "$path"; else rm -f "$path"; fi
        fatal "'$*' rejected the new $path; the previous one is back in place. It said: $output"
    fi
    return 0
}

# --- a directory with this owner and mode, created or corrected; says so only on a change ---
# Usage: ensure_dir PATH USER:GROUP MODE
ensure_dir() {
    local path="$1" owner="$2" mode="$3"
    [[ ! -L $path ]] || fatal "$path is a symbolic link; it must be a directory"
    if [[ ! -d $path ]]; then
        install -d -o "${owner%%:*}" -g "${owner#*:}" -m "$mode" "$path"
        info "created $path ($owner, mode $mode)"
    elif [[ $(stat -c '%U:%G %a' "$path") != "$owner ${mode#0}" ]]; then
        chown "$owner" "$path"
        chmod "$mode" "$path"
        info "set $path to $owner, mode $mode"
    fi
}

# --- check: read-only. Each difference between the VPS and what the step applied is one line
# on stdout, "drift: ...". Nothing is printed when they match, and never a file's content. ---
drift() { printf 'drift: %s\n' "$*"; }

# --- a path's owner as user:group, or uid:gid where they have no name ---
owner_of() {
    local owner
    owner=$(stat -c %U:%G "$1")
    [[ $owner != *UNKNOWN* ]] || owner=$(stat -c %u:%g "$1")
    printf '%s' "$owner"
}

# Usage: check_file SOURCE PATH MODE [OWNER:GROUP]   (default root:root)
check_file() {
    local source="$1" path="$2" mode="$3" owner="${4:-root:root}" actual
    if [[ ! -f $path ]]; then
        drift "$path is missing"
        return 0
    fi
    cmp -s "$source" "$path" || drift "$path: its content differs from the applied one"
    actual=$(stat -c %a "$path")
    [[ $actual == "${mode#0}" ]] || drift "$path: mode $actual, applied ${mode#0}"
    actual=$(owner_of "$path")
    [[ $actual == "$owner" ]] || drift "$path: owner $actual, applied $owner"
}

# Usage: check_dir PATH OWNER:GROUP MODE
check_dir() {
    local actual
    if [[ ! -d $1 ]]; then
        drift "the directory $1 is missing"
        return 0
    fi
    actual="$(owner_of "$1") $(stat -c %a "$1")"
    [[ $actual == "$2 ${3#0}" ]] || drift "$1: $actual, applied $2 ${3#0}"
}

# Usage: check_service UNIT   enabled, and running
check_service() {
    systemctl is-enabled --quiet "$1" || drift "the service $1 is not enabled"
    systemctl is-active --quiet "$1" || drift "the service $1 is not running"
}

# --- " (also set in FILE...)": sshd's files other than DROPIN that set KEYWORD ---
# Usage: set_elsewhere KEYWORD DROPIN
set_elsewhere() {
    local files
    files=$(grep -lisE -- "^[[:space:]]*$1([[:space:]]|=)" /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf | grep -vxF -- "$2" | paste -sd ' ') || true
    [[ -z $files ]] || printf ' (also set in %s)' "$files"
}

# Usage: check_login USER KEYS_FILE DROPIN [SHELL]: the user with its login shell (no shell
# unless SHELL), its key and rules as applied, and each setting of the rules' Match block in
# force for the user (`sshd -T`), so a rule that another file overrides is found too.
check_login() {
    local login_user="$1" login_keys="$2" login_rules="$3" login_shell="${4:-/usr/sbin/nologin}" shell effective key value
    shell=$(getent passwd "$login_user" | cut -d: -f7) || true
    if [[ -z $shell ]]; then
        drift "the user $login_user is missing"
    elif [[ $shell != "$login_shell" ]]; then
        drift "the user $login_user has the shell $shell, applied $login_shell"
    fi
    check_file "$(staged "$login_keys")" "$login_keys" 0644
    check_file "$(staged "$login_rules")" "$login_rules" 0644
    if ! effective=$(/usr/sbin/sshd -T -C "user=$login_user,host=overlay-check,addr=127.0.0.1" 2>&1); then
        drift "sshd rejects its configuration: ${effective##*$'\n'}"
        return 0
    fi
    while read -r key value; do
        [[ -n $key && $key != \#* && ${key,,} != match ]] || continue
        grep -qixF -- "$key $value" <<<"$effective" ||
            drift "sshd gives $login_user '$(grep -i -m1 -- "^$key " <<<"$effective" || echo "no ${key,,}")', applied '$key $value'$(set_elsewhere "$key" "$login_rules")"
    done <"$(staged "$login_rules")"
}

# --- make sshd read its config again, if it is running ---
reload_sshd() {
    if systemctl is-active --quiet ssh; then systemctl reload ssh; fi
}

# --- an SSH login of the program's own (the tunnel's, the backup store's): a system user with
# no password, no shell and no home; its authorized_keys and its sshd drop-in, both staged ---
# Usage: ensure_system_user USER COMMENT [SHELL]: a system user with no password and no home,
# and no shell unless SHELL, its login shell, which is set again if it differs.
ensure_system_user() {
    local name="$1" comment="$2" shell="${3:-/usr/sbin/nologin}"
    if ! id -u "$name" >/dev/null 2>&1; then
        info "creating the system user $name (no password, no home, login shell $shell)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent --shell "$shell" --comment "$comment" "$name"
    elif [[ $(getent passwd "$name" | cut -d: -f7) != "$shell" ]]; then
        info "setting the login shell of $name to $shell"
        usermod --shell "$shell" "$name"
    fi
}

# Usage: install_login USER KEYS_FILE DROPIN; sshd checks the drop-in and is reloaded when it changes.
install_login() {
    local login_user="$1" login_keys="$2" login_rules="$3"
    ensure_dir "${login_keys%/*}" root:root 0755
    if install_file "$(staged "$login_keys")" "$login_keys" 0644; then info "installed the key for $login_user"; fi
    if install_validated "$(staged "$login_rules")" "$login_rules" 0644 /usr/sbin/sshd -t; then
        info "sshd settings for $login_user changed; reloading sshd"
        reload_sshd
    fi
}

# Usage: remove_login USER KEYS_FILE DROPIN. The rules and the key go first, so that no new
# session starts; then the user's sessions end (5 s at most) and the user goes.
remove_login() {
    local login_user="$1" login_keys="$2" login_rules="$3" i
    if remove_path "$login_rules"; then reload_sshd; fi
    remove_path "$login_keys" || true
    [[ ! -d ${login_keys%/*} ]] || rmdir "${login_keys%/*}"
    id -u "$login_user" >/dev/null 2>&1 || return 0
    pkill -KILL -u "$login_user" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        if ! pgrep -u "$login_user" >/dev/null; then
            userdel "$login_user"
            return 0
        fi
        sleep 0.1
    done
    fatal "processes of $login_user are still running after 5 s"
}

# --- remove a file or link if present; returns 0 when something was removed ---
remove_path() {
    [[ -e $1 || -L $1 ]] || return 1
    rm -f "$1"
}

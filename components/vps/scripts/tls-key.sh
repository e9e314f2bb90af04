# Step: the provided TLS private key, the one secret the VPS holds. It arrives on stdin with
# this script, never on a command line.
#   apply --file /etc/ssl/overlay/<hostname>.key CONTENT
#   remove HOSTNAME
#   check  (the apply arguments)   prints whether the installed key differs (never the key)
# Functions from lib.sh are sent before this file.

readonly dir="/etc/ssl/overlay"

# --- stages the apply arguments, readable by root only, and sets `key` to the staged key ---
stage_key() {
    umask 077
    stage_arguments "$@"
    key=$(find "$workdir/files$dir" -maxdepth 1 -name '*.key' -print -quit)
    [[ -n $key ]] || fatal "the program sent no key"
}

apply() {
    local key
    need_root
    stage_key "$@"
    install -d -m 0755 "$dir"
    if install_file "$key" "$dir/$(basename "$key")" 0600; then
        info "installed the TLS key $dir/$(basename "$key")"
    fi
}

check() {
    local key
    need_root
    stage_key "$@"
    check_file "$key" "$dir/$(basename "$key")" 0600
}

remove() {
    local hostname="$1"
    need_root
    remove_path "$dir/$hostname.key" || true
    rmdir "$dir" 2>/dev/null || true
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) shift; remove "$@" ;;
        check) shift; check "$@" ;;
        *) fatal "usage: apply --file /etc/ssl/overlay/HOSTNAME.key CONTENT | remove HOSTNAME | check (the apply arguments)" ;;
    esac
}

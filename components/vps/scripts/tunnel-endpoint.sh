# Step: the tunnel endpoint on the VPS: a system user that can hold one reverse forward on
# 127.0.0.1 and nothing else, its key, and the sshd rules that enforce it.
#   apply --file <drop-in> CONTENT --file <authorized_keys> CONTENT
#         prints the VPS's ED25519 host key
#   remove
# Functions from lib.sh are sent before this file.

readonly tunnel_user="tunnel"
readonly dropin="/etc/ssh/sshd_config.d/overlay-tunnel.conf"
readonly keys_dir="/etc/ssh/overlay-tunnel"
readonly keys_file="$keys_dir/authorized_keys"
readonly host_key="/etc/ssh/ssh_host_ed25519_key.pub"
readonly sshd="/usr/sbin/sshd"

apply() {
    local changed=0
    need_root
    [[ -x $sshd ]] || fatal "OpenSSH server is not installed at $sshd"
    need_cmd useradd
    stage_arguments "$@"

    if ! id -u "$tunnel_user" >/dev/null 2>&1; then
        info "creating the system user $tunnel_user (no password, no shell, no home)"
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            --comment "overlay SSH reverse tunnel" "$tunnel_user"
    fi

    install -d -m 0755 -o root -g root "$keys_dir"
    install_file "$(staged "$keys_file")" "$keys_file" 0644 || true
    if install_validated "$(staged "$dropin")" "$dropin" 0644 "$sshd" -t; then changed=1; fi
    if ((changed)); then
        info "sshd settings for $tunnel_user changed; reloading sshd"
        reload_sshd
    fi
    # Type and key only: the comment names the machine the key was made on.
    cut -d' ' -f1,2 "$host_key"
}

remove() {
    need_root
    if remove_path "$dropin"; then reload_sshd; fi
    remove_path "$keys_file" || true
    [[ ! -d $keys_dir ]] || rmdir "$keys_dir"
    if id -u "$tunnel_user" >/dev/null 2>&1; then
        pkill -KILL -u "$tunnel_user" 2>/dev/null || true
        userdel "$tunnel_user"
    fi
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) remove ;;
        *) fatal "usage: apply --file PATH CONTENT... | remove" ;;
    esac
}

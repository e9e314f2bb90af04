# Step: the tunnel endpoint on the VPS: a system user that can hold one reverse forward on
# 127.0.0.1 and nothing else, its key, the sshd rules that enforce it, and an open-files
# limit for sshd that holds a descriptor per client relayed through the tunnel.
#   apply --file <drop-in> CONTENT --file <authorized_keys> CONTENT --file <ssh.service drop-in> CONTENT
#         prints the VPS's ED25519 host key
#   remove
# Functions from lib.sh are sent before this file.

readonly tunnel_user="tunnel"
readonly dropin="/etc/ssh/sshd_config.d/overlay-tunnel.conf"
readonly keys_file="/etc/ssh/overlay-tunnel/authorized_keys"
readonly host_key="/etc/ssh/ssh_host_ed25519_key.pub"
readonly limits="/etc/systemd/system/ssh.service.d/overlay-limits.conf"

apply() {
    need_root
    need_sshd
    need_cmd useradd
    stage_arguments "$@"
    ensure_system_user "$tunnel_user" "overlay SSH reverse tunnel"
    install_login "$tunnel_user" "$keys_file" "$dropin"
    # The limit is read when sshd starts, and sessions inherit it. Debian's ssh.service stops
    # only the listener on restart (KillMode=process): open sessions, this one included, go on
    # with the limit they had; the tunnel's next connection gets the new one.
    if install_file "$(staged "$limits")" "$limits" 0644; then
        systemctl daemon-reload
        if systemctl is-active --quiet ssh; then
            info "sshd's open-files limit changed; restarting sshd (open sessions stay)"
            systemctl restart ssh
        fi
    fi
    # Type and key only: the comment names the machine the key was made on.
    cut -d' ' -f1,2 "$host_key"
}

remove() {
    need_root
    remove_login "$tunnel_user" "$keys_file" "$dropin"
    # The raised limit stays in force until sshd next starts.
    if remove_path "$limits"; then
        rmdir --ignore-fail-on-non-empty "${limits%/*}"
        systemctl daemon-reload
    fi
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) remove ;;
        *) fatal "usage: apply --file PATH CONTENT... | remove" ;;
    esac
}

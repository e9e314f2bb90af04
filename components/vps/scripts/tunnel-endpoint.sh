# Step: the tunnel endpoint on the VPS: a system user that can hold one reverse forward on
# 127.0.0.1 and nothing else, its key, and the sshd rules that enforce it.
#   apply --file <drop-in> CONTENT --file <authorized_keys> CONTENT
#         prints the VPS's ED25519 host key
#   remove
# Functions from lib.sh are sent before this file.

readonly tunnel_user="tunnel"
readonly dropin="/etc/ssh/sshd_config.d/overlay-tunnel.conf"
readonly keys_file="/etc/ssh/overlay-tunnel/authorized_keys"
readonly host_key="/etc/ssh/ssh_host_ed25519_key.pub"

apply() {
    need_root
    need_sshd
    need_cmd useradd
    stage_arguments "$@"
    ensure_system_user "$tunnel_user" "overlay SSH reverse tunnel"
    install_login "$tunnel_user" "$keys_file" "$dropin"
    # Type and key only: the comment names the machine the key was made on.
    cut -d' ' -f1,2 "$host_key"
}

remove() {
    need_root
    remove_login "$tunnel_user" "$keys_file" "$dropin"
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) remove ;;
        *) fatal "usage: apply --file PATH CONTENT... | remove" ;;
    esac
}

# Step: the tunnel endpoint on the VPS: a system user that can hold one reverse forward on
# 127.0.0.1 and nothing else, its key, the sshd rules that enforce it, its login shell (which
# runs no command, and ends a connection whose heartbeat stops), and an open-files limit for
# its sessions, which hold a descriptor per client relayed through the tunnel.
#   apply --file <drop-in> CONTENT --file <authorized_keys> CONTENT --file <limits.d file> CONTENT
#         --file <login shell> CONTENT
#         prints the VPS's ED25519 host key
#   remove
#   check  (the apply arguments)   prints how the VPS differs from them, changes nothing
# Functions from lib.sh are sent before this file.

readonly tunnel_user="tunnel"
readonly dropin="/etc/ssh/sshd_config.d/overlay-tunnel.conf"
readonly keys_file="/etc/ssh/overlay-tunnel/authorized_keys"
readonly host_key="/etc/ssh/ssh_host_ed25519_key.pub"
readonly limits="/etc/security/limits.d/overlay-tunnel.conf"
readonly session="/usr/local/lib/overlay/tunnel-session"

apply() {
    need_root
    need_sshd
    need_cmd useradd
    stage_arguments "$@"
    if install_file "$(staged "$session")" "$session" 0755; then info "installed $tunnel_user's login shell, $session"; fi
    ensure_system_user "$tunnel_user" "overlay SSH reverse tunnel" "$session"
    install_login "$tunnel_user" "$keys_file" "$dropin"
    # The user's open-files limit: pam_limits sets it as each session opens, so the tunnel's
    # next connection gets it and nothing restarts. Without PAM a session keeps sshd's own.
    if install_file "$(staged "$limits")" "$limits" 0644; then info "installed the open-files limit of $tunnel_user's sessions"; fi
    if [[ $(/usr/sbin/sshd -T 2>/dev/null | awk '$1 == "usepam" { print $2 }') == no ]]; then
        info "sshd runs without PAM (UsePAM no): $tunnel_user's sessions keep sshd's open-files limit, not $limits"
    fi
    # Type and key only: the comment names the machine the key was made on.
    cut -d' ' -f1,2 "$host_key"
}

check() {
    need_root
    need_sshd
    stage_arguments "$@"
    check_login "$tunnel_user" "$keys_file" "$dropin" "$session"
    check_file "$(staged "$session")" "$session" 0755
    check_file "$(staged "$limits")" "$limits" 0644
    check_service ssh
}

remove() {
    need_root
    remove_login "$tunnel_user" "$keys_file" "$dropin"
    remove_path "$limits" || true
    remove_path "$session" || true
    [[ ! -d ${session%/*} ]] || rmdir --ignore-fail-on-non-empty "${session%/*}"
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) remove ;;
        check) shift; check "$@" ;;
        *) fatal "usage: apply --file PATH CONTENT... | remove | check (the apply arguments)" ;;
    esac
}

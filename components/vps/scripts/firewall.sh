# Step: the VPS firewall, one nftables table of our own.
#   apply --file /etc/nftables.d/overlay-firewall.nft CONTENT
#   remove          deletes the table; other rules on the machine are not touched
# Functions from lib.sh are sent before this file.

readonly rules="/etc/nftables.d/overlay-firewall.nft"
readonly table="overlay_firewall"
readonly main_conf="/etc/nftables.conf"
readonly include_line="include \"$rules\""

apply() {
    local changed=0
    need_root
    ensure_packages nftables
    stage_arguments "$@"
    if install_validated "$(staged "$rules")" "$rules" 0644 nft -c -f "$rules"; then changed=1; fi
    # Loaded at boot by nftables.service through the distribution's main file.
    [[ -f $main_conf ]] || printf '#!/usr/sbin/nft -f\n' >"$main_conf"
    grep -qxF "$include_line" "$main_conf" || printf '%s\n' "$include_line" >>"$main_conf"
    if ! systemctl is-enabled --quiet nftables; then systemctl enable --quiet nftables; fi
    if ((changed)) || ! nft list table inet "$table" >/dev/null 2>&1; then
        info "loading the firewall table $table"
        nft -f "$rules"
    fi
}

remove() {
    need_root
    if nft list table inet "$table" >/dev/null 2>&1; then nft delete table inet "$table"; fi
    if [[ -f $main_conf ]] && grep -qxF "$include_line" "$main_conf"; then
        grep -vxF "$include_line" "$main_conf" >"$main_conf.overlay-new" || true
        chmod --reference="$main_conf" "$main_conf.overlay-new"
        mv -f "$main_conf.overlay-new" "$main_conf"
    fi
    remove_path "$rules" || true
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) remove ;;
        *) fatal "usage: apply --file PATH CONTENT | remove" ;;
    esac
}

# Step: the VPS firewall, one nftables table of our own.
#   apply --file /etc/nftables.d/overlay-firewall.nft CONTENT
#   remove          deletes the table; other rules on the machine are not touched
#   check  (the apply arguments)   prints how the VPS differs from them, changes nothing
# Functions from lib.sh are sent before this file.

readonly rules="/etc/nftables.d/overlay-firewall.nft"
readonly table="overlay_firewall"
readonly main_conf="/etc/nftables.conf"
readonly include_line="include \"$rules\""

# --- whether the loaded table is the one FILE makes: both listed terse (-t, without the rate
# limiter's addresses, which change all the time), FILE's from a network namespace of its own ---
table_is() {
    local live applied
    live=$(nft -s -t list table inet "$table" 2>/dev/null) || return 1
    # shellcheck disable=SC2016 # "$1" and "$2" are the inner sh's
    applied=$(unshare --net sh -c 'nft -f "$1" && nft -s -t list table inet "$2"' sh "$1" "$table" 2>&1) ||
        fatal "could not list the table $1 makes, in a scratch network namespace: $applied"
    [[ $live == "$applied" ]]
}

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
    if ((changed)) || ! table_is "$rules"; then
        info "loading the firewall table $table"
        nft -f "$rules"
    fi
}

check() {
    need_root
    stage_arguments "$@"
    check_file "$(staged "$rules")" "$rules" 0644
    grep -qxF "$include_line" "$main_conf" 2>/dev/null || drift "$main_conf no longer includes $rules (the table would not load at boot)"
    systemctl is-enabled --quiet nftables || drift "the service nftables is not enabled (the table would not load at boot)"
    if ! nft list table inet "$table" >/dev/null 2>&1; then
        drift "the firewall table $table is not loaded"
    elif ! table_is "$(staged "$rules")"; then
        drift "the firewall table $table differs from the applied one"
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
        check) shift; check "$@" ;;
        *) fatal "usage: apply --file PATH CONTENT | remove | check (the apply arguments)" ;;
    esac
}

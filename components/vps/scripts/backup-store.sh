# Step: the backup store on the VPS: a system user that may keep and fetch files over SFTP in
# its chroot and nothing else, its key, and the sshd rules that enforce it.
#   apply --file <drop-in> CONTENT --file <authorized_keys> CONTENT
#   remove [keep|delete]
#         keep (the default) leaves the backups in /srv/overlay-backup/backups, owned by root;
#         delete removes /srv/overlay-backup and the backups in it
#   check  (the apply arguments)   prints how the VPS differs from them, changes nothing
# Reads no environment variables. Functions from lib.sh are sent before this file.

readonly backup_user="overlay-backup"
readonly chroot_dir="/srv/overlay-backup"
readonly store_dir="$chroot_dir/backups"
readonly dropin="/etc/ssh/sshd_config.d/overlay-backup.conf"
readonly keys_file="/etc/ssh/overlay-backup/authorized_keys"

# --- sshd refuses a chroot unless every directory above it is root's and writable by root only ---
check_chroot_parents() {
    local dir="$chroot_dir" owner_mode
    while [[ $dir != / ]]; do
        dir=$(dirname "$dir")
        owner_mode=$(stat -c '%u %a' "$dir")
        if [[ ${owner_mode%% *} != 0 ]] || ((8#${owner_mode#* } & 8#022)); then
            fatal "sshd would refuse the chroot $chroot_dir: $dir must belong to root and be writable by root only"
        fi
    done
}

apply() {
    need_root
    need_sshd
    need_cmd useradd
    need_cmd find
    stage_arguments "$@"
    ensure_system_user "$backup_user" "overlay backup store (SFTP only)"

    [[ -d ${chroot_dir%/*} ]] || install -d -m 0755 -o root -g root "${chroot_dir%/*}"
    check_chroot_parents
    ensure_dir "$chroot_dir" root:root 0755
    ensure_dir "$store_dir" "$backup_user:$backup_user" 0700
    # A user created again may have another uid than the one that owns the kept backups.
    if [[ -n $(find "$store_dir" -mindepth 1 \( ! -user "$backup_user" -o ! -group "$backup_user" \) -print -quit) ]]; then
        chown -R "$backup_user:$backup_user" "$store_dir"
        info "gave the files in $store_dir to $backup_user"
    fi

    install_login "$backup_user" "$keys_file" "$dropin"
}

check() {
    need_root
    need_sshd
    stage_arguments "$@"
    check_login "$backup_user" "$keys_file" "$dropin"
    check_dir "$chroot_dir" root:root 0755
    check_dir "$store_dir" "$backup_user:$backup_user" 0700
}

remove() {
    local backups="$1"
    [[ $backups == keep || $backups == delete ]] || fatal "remove takes 'keep' or 'delete', not '$backups'"
    need_root
    remove_login "$backup_user" "$keys_file" "$dropin"

    [[ -d $chroot_dir ]] || return 0
    if [[ $backups == delete ]]; then
        rm -rf --one-file-system "$chroot_dir"
        info "deleted $chroot_dir and the backups in it"
    elif [[ -d $store_dir ]]; then
        # The freed uid goes to the next system user created: root keeps the files meanwhile.
        chown -R root:root "$store_dir"
        info "kept the backups in $store_dir ($(find "$store_dir" -type f | wc -l) files); remove with 'delete' or rm -rf $chroot_dir to delete them"
    fi
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        # Pulumi's delete sends the apply arguments too: they follow the optional keep|delete.
        check) shift; check "$@" ;;
        remove) if [[ ${2:-keep} == --file ]]; then remove keep; else remove "${2:-keep}"; fi ;;
        *) fatal "usage: apply --file PATH CONTENT... | remove [keep|delete] | check (the apply arguments)" ;;
    esac
}

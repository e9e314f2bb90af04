#!/usr/bin/env bash
# Builds the throwaway "VPS" of the end-to-end suite: a stock Debian 12 (bookworm) made with
# debootstrap from Debian's packages, with only what a provider's minimal image has (systemd,
# openssh-server, sudo, apt). nginx, coturn and nftables are NOT in it: the project's VPS
# steps install them, as they would on a fresh VPS. The image is cached: re-running with an
# unchanged script does nothing.
#
# Usage: build-vm-image.sh DIR
# Leaves in DIR: disk.img (raw ext4 root), vmlinuz, initrd.img, id_ed25519 (root's login key,
# the "user's" VPS key), ssh_host_ed25519_key.pub (the VM's host key, to pin) and a stamp.
set -euo pipefail

info() { printf 'build-vm-image: %s\n' "$*" >&2; }
fatal() { info "error: $*"; exit 1; }

readonly suite=bookworm
# What the harness needs in the guest besides a provider's minimal image: socat, to open a
# listener on a port the firewall must close.
readonly packages=systemd-sysv,udev,dbus,kmod,initramfs-tools,linux-image-amd64,openssh-server,ca-certificates,sudo,iproute2,netbase,procps,socat
# Inside the guest, the mirror's name points at QEMU's address for the host side (10.0.2.2),
# where the harness relays the mirror's port to it (vm.ts); nothing else is reachable from the guest.
readonly mirror_relay=10.0.2.2

# --- the host of an archive's URI: http://host[:port]/path → host ---
uri_host() {
    local rest="${1#*://}"
    rest=${rest%%/*}
    printf '%s\n' "${rest%%:*}"
}

configure_guest() {
    local root="$1"
    printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
    printf 'vps\n' >"$root/etc/hostname"
    printf '127.0.0.1 localhost vps\n::1 localhost\n%s %s\n' "$mirror_relay" "$(uri_host "$mirror")" >"$root/etc/hosts"
    printf 'nameserver 10.0.2.3\n' >"$root/etc/resolv.conf"
    cat >"$root/etc/systemd/network/10-wired.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=ipv4
EOF
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
    chroot "$root" systemctl enable systemd-networkd ssh >/dev/null 2>&1
    chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
    # Like a provider's image: no downloaded packages, no package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$out/ssh_host_ed25519_key.pub"
}

main() {
    (($# == 1)) || fatal "usage: build-vm-image.sh DIR"
    [[ $(id -u) -eq 0 ]] || fatal "debootstrap needs root"
    local cmd
    for cmd in debootstrap mkfs.ext4 ssh-keygen sha256sum; do
        command -v "$cmd" >/dev/null || fatal "'$cmd' is missing: apt-get install debootstrap e2fsprogs openssh-client coreutils"
    done
    out="$1"
    # The mirror this machine's apt uses; the guest reaches its host through the relay, so the
    # security archive must be served by the same host.
    mirror=$(bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/debian-mirror.sh")
    security=$(bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/debian-mirror.sh" debian-security)
    [[ $(uri_host "$security") == "$(uri_host "$mirror")" ]] || fatal "the security archive ($security) is on another host than $mirror: the VM reaches one"
    mkdir -p "$out"
    local stamp
    stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
    if [[ -f $out/disk.img && $(cat "$out/stamp" 2>/dev/null) == "$stamp" ]]; then
        return 0
    fi
    info "building the Debian $suite VM image in $out (about two minutes)"
    local start=$SECONDS
    rm -f "$out/stamp" "$out/disk.img" "$out/id_ed25519" "$out/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C overlay-e2e -f "$out/id_ed25519"
    local root="$out/root.partial"
    rm -rf "$root"
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 ||
        fatal "debootstrap failed; see $out/debootstrap.log"
    configure_guest "$root"
    local kernels=("$root"/boot/vmlinuz-*) initrds=("$root"/boot/initrd.img-*)
    cp "${kernels[-1]}" "$out/vmlinuz"
    cp "${initrds[-1]}" "$out/initrd.img"
    truncate -s 4G "$out/disk.img.partial"
    mkfs.ext4 -q -d "$root" -F "$out/disk.img.partial"
    mv "$out/disk.img.partial" "$out/disk.img"
    rm -rf "$root"
    printf '%s\n' "$stamp" >"$out/stamp"
    info "built the VM image in $((SECONDS - start)) s"
}

main "$@"

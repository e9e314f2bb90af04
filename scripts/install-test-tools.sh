#!/usr/bin/env bash
# Installs the real programs the tests check generated files with, so that `npm test` runs
# on a fresh Debian 12 machine:
#   - Debian packages (when run as root and a package is missing): shellcheck, and the
#     daemons the VPS runs (openssh-server, nginx, coturn, nftables) with the tools the tests
#     drive them with. Their services are not started on this machine: the tests run them in
#     network namespaces of their own;
#   - for the end-to-end suite: qemu, qemu-img, debootstrap and socat (the throwaway VPS);
#     containerd, runc, the CNI plugins, iptables and ipset (the cluster's Nodes, started
#     only by the test, in namespaces of its own), umoci and gcc (the Nodes' images);
#   - headscale v0.29.2 and tailscale/tailscaled/containerboot v1.102.5, built from the Go
#     module proxy into .tools/bin as their release images build them (static, with the same
#     build tags and flags);
#   - the real Pulumi engine (scripts/install-pulumi.sh) and a Kubernetes v1.34.4 control
#     plane with its node binaries and add-ons (scripts/install-kubernetes.sh), built with Go,
#     for the end-to-end test.
# Environment: TOOLS_DIR (default: <repo>/.tools). Re-running changes nothing.
set -euo pipefail

info() { printf 'install-test-tools: %s\n' "$*" >&2; }
fatal() { info "error: $*"; exit 1; }

readonly headscale_module="github.com/juanfont/headscale"
readonly headscale_version="v0.29.2"
readonly tailscale_version="v1.102.5"
readonly debian_packages=(shellcheck openssh-server openssh-client nginx certbot coturn nftables iproute2 curl openssl procps
    qemu-system-x86 qemu-utils debootstrap e2fsprogs socat sqlite3 age
    containerd runc containernetworking-plugins iptables ipset umoci libcap2-bin gcc libc6-dev)

# --- Debian packages, installed only when missing ---
install_debian_packages() {
    local missing=()
    local pkg
    for pkg in "${debian_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) -eq 0 ]] || fatal "missing Debian packages: ${missing[*]} (install them, or run as root)"
    info "installing Debian packages: ${missing[*]}"
    local start=$SECONDS
    apt-get update -qq
    # Keep the packages' services from starting here (sshd on 22, nginx on 80, ...).
    local guard=/usr/sbin/policy-rc.d placed=0
    if [[ ! -e $guard ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$guard"
        chmod 0755 "$guard"
        placed=1
    fi
    local status=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || status=$?
    ((placed == 0)) || rm -f "$guard"
    ((status == 0)) || fatal "apt-get install ${missing[*]} failed"
    info "installed the Debian packages in $((SECONDS - start)) s"
}

# Bump when the way a binary is built changes, so that its stamp no longer matches.
readonly recipe_version="2"

# --- headscale, built as its own main module so its go.mod and go.sum apply exactly, with
# the flags of its release (.goreleaser.yml at the tag: CGO_ENABLED=0, -mod=readonly, and
# goreleaser's default -s -w). (`go install MODULE@VERSION` would do the same but first lists
# all versions, which the module proxy may refuse for this module.) ---
install_headscale() {
    local bin="$1/headscale"
    # A build from the module directory reports version "dev"; a stamp file records ours.
    if [[ -x $bin && $(cat "$bin.version" 2>/dev/null) == "$headscale_version recipe $recipe_version" ]]; then
        return 0
    fi
    command -v go >/dev/null || fatal "Go is required to build headscale ${headscale_version}"
    info "building headscale ${headscale_version} (a few minutes the first time)"
    local start=$SECONDS
    local dir
    dir=$(go mod download -json "${headscale_module}@${headscale_version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $dir && -d $dir ]] || fatal "could not download ${headscale_module}@${headscale_version}"
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -ldflags "-s -w" -o "$bin" ./cmd/headscale)
    "$bin" version >/dev/null || fatal "the headscale build does not run"
    printf '%s recipe %s\n' "$headscale_version" "$recipe_version" >"$bin.version"
    info "built headscale ${headscale_version} in $((SECONDS - start)) s"
}

# --- tailscale, tailscaled and containerboot (the tailscale image's entry point), for the
# router's image and the test's own nodes, built as build_docker.sh has mkctr build them:
# CGO_ENABLED=0, -trimpath, tags ts_kube,ts_package_container, the version stamped. (Not with
# tailscale's own Go fork, which only GitHub serves; the module proxy's commit is unknown, so
# the stamp has no commit.) ---
install_tailscale() {
    local bin="$1"
    if [[ -x $bin/tailscale && -x $bin/tailscaled && -x $bin/containerboot && $(cat "$bin/tailscaled.version" 2>/dev/null) == "$tailscale_version recipe $recipe_version" ]]; then
        return 0
    fi
    command -v go >/dev/null || fatal "Go is required to build tailscale ${tailscale_version}"
    info "building tailscale, tailscaled and containerboot ${tailscale_version} (a few minutes the first time)"
    local start=$SECONDS version=${tailscale_version#v}
    local stamps="-X tailscale.com/version.longStamp=${version} -X tailscale.com/version.shortStamp=${version}"
    GOBIN="$bin" CGO_ENABLED=0 go install -trimpath -tags ts_kube,ts_package_container -ldflags "$stamps" \
        "tailscale.com/cmd/tailscale@${tailscale_version}" "tailscale.com/cmd/tailscaled@${tailscale_version}" \
        "tailscale.com/cmd/containerboot@${tailscale_version}"
    "$bin/tailscaled" --version >/dev/null || fatal "the tailscaled build does not run"
    printf '%s recipe %s\n' "$tailscale_version" "$recipe_version" >"$bin/tailscaled.version"
    info "built tailscale, tailscaled and containerboot ${tailscale_version} in $((SECONDS - start)) s"
}

main() {
    local repo tools
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    tools="${TOOLS_DIR:-$repo/.tools}"
    mkdir -p "$tools/bin"
    install_debian_packages
    install_headscale "$tools/bin"
    install_tailscale "$tools/bin"
    TOOLS_DIR="$tools" bash "$repo/scripts/install-pulumi.sh"
    TOOLS_DIR="$tools" bash "$repo/scripts/install-kubernetes.sh"
}

main "$@"

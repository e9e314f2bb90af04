#!/usr/bin/env bash
# Builds a real Kubernetes control plane and the node binaries for the end-to-end test, from
# the Go module proxy only (no release tarballs, no container images):
#   - kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and the node's kubelet
#     and kube-proxy v1.34.4, from a wrapper module that requires k8s.io/kubernetes and points
#     each of its ./staging modules at the published v0.34.4 of the same module;
#   - etcd 3.6.16, from a wrapper module that requires go.etcd.io/etcd/server/v3;
#   - the cluster's add-ons as k3s runs them: CoreDNS 1.15.0, and the network-policy
#     controller of kube-router, from k3s's fork (v2.6.3-k3s1, the one k3s embeds), each built
#     in its own module directory with its own go.mod and go.sum, with its Makefile's flags;
#   - the pause program of the pods' sandboxes, pause.c from the Kubernetes module, built
#     static with gcc as build/pause/Makefile builds it.
# The binaries go to $TOOLS_DIR/bin, the wrapper modules to $TOOLS_DIR/kubernetes/build.
# Each binary has a stamp (<binary>.version: version and recipe): a binary whose stamp
# matches is not rebuilt, so a second run only reads ten files.
# Environment: TOOLS_DIR (default: <repo>/.tools). Go settings are set for this script's
# own go commands only (GOWORK=off, CGO_ENABLED=0, GOTOOLCHAIN=local, GOFLAGS); nothing is
# written with `go env -w`.
set -euo pipefail

info() { printf 'install-kubernetes: %s\n' "$*" >&2; }
fatal() { info "error: $*"; exit 1; }

readonly kubernetes_module="k8s.io/kubernetes"
readonly kubernetes_version="v1.34.4"
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are published with v0.<minor>.
readonly staging_version="v0.34.4"
readonly etcd_module="go.etcd.io/etcd/server/v3"
readonly etcd_version="v3.6.16"
readonly coredns_module="github.com/coredns/coredns"
readonly coredns_version="v1.15.0"
# k3s's fork declares itself github.com/cloudnativelabs/kube-router/v2, as k3s replaces it in.
readonly kube_router_module="github.com/k3s-io/kube-router/v2"
readonly kube_router_version="v2.6.3-k3s1"
# build/pause/Makefile's TAG at v1.34.4.
readonly pause_version="3.10.1"
# Bump when the way the binaries are built changes, so that the stamps no longer match.
readonly recipe_version="1"
readonly kubernetes_binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

# --- the stamp a binary built by this recipe carries ---
stamp_of() {
    local version="$1"
    printf '%s recipe %s\n' "$version" "$recipe_version"
}

# --- true when the binary exists and its stamp matches ---
is_current() {
    local bin="$1" version="$2"
    [[ -x $bin && $(cat "$bin.version" 2>/dev/null) == "$(stamp_of "$version")" ]]
}

# --- Go is present, new enough, and used as-is for this script's go commands ---
setup_go() {
    command -v go >/dev/null || fatal "Go 1.26 or later is required (etcd ${etcd_version} needs it)"
    local goversion minor
    goversion=$(go env GOVERSION)
    minor=$(sed -n 's/^go1\.\([0-9]*\).*/\1/p' <<<"$goversion")
    if [[ -z $minor ]] || ((minor < 26)); then
        fatal "Go 1.26 or later is required (etcd ${etcd_version} needs it), found ${goversion}"
    fi
    # No go.work from a parent directory, static binaries as Kubernetes releases them, the
    # local toolchain only, and none of the caller's GOFLAGS (-mod=vendor would break the
    # wrapper modules). -buildvcs=false: the build directories may lie inside a git work tree.
    export GOWORK=off CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
}

# --- moves a fresh build into bin, checks it runs, and stamps it ---
install_binary() {
    local built="$1" bin="$2" version="$3" expect="$4"
    shift 4
    local output
    output=$("$built" "$@" 2>&1) || fatal "$(basename "$bin") $* failed: ${output}"
    [[ $output == *"$expect"* ]] || fatal "$(basename "$bin") $* says '${output}', expected ${expect}"
    mv -f "$built" "$bin"
    stamp_of "$version" >"$bin.version"
}

# --- the wrapper module for Kubernetes: require it, replace its ./staging modules ---
prepare_kubernetes_module() {
    local dir="$1"
    local gomod
    gomod=$(go mod download -json "${kubernetes_module}@${kubernetes_version}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
    [[ -n $gomod && -f $gomod ]] || fatal "could not download ${kubernetes_module}@${kubernetes_version}"
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
    # directories of its repository, which a module zip does not have; replaces in a
    # dependency's go.mod are ignored anyway, so the wrapper repeats them with the versions
    # published from that same staging tree.
    local staging
    mapfile -t staging < <(sed -n 's#^[[:space:]]*\([^[:space:]]*\) => \./staging/.*#\1#p' "$gomod")
    ((${#staging[@]} > 0)) || fatal "found no ./staging replaces in ${gomod}"
    mkdir -p "$dir"
    {
        printf 'module kubernetes-build\n\ngo 1.24.0\n\ngodebug default=go1.24\n\n'
        printf 'require %s %s\n\ntool (\n' "$kubernetes_module" "$kubernetes_version"
        local name
        for name in "${kubernetes_binaries[@]}"; do
            printf '\t%s/cmd/%s\n' "$kubernetes_module" "$name"
        done
        printf ')\n\nreplace (\n'
        for name in "${staging[@]}"; do
            printf '\t%s => %s %s\n' "$name" "$name" "$staging_version"
        done
        printf ')\n'
    } >"$dir/go.mod"
    info "resolving ${kubernetes_module} ${kubernetes_version} with ${#staging[@]} staging modules at ${staging_version}"
    (cd "$dir" && go mod tidy) || fatal "go mod tidy failed in ${dir}"
}

# --- the -X flags that make the binaries report v1.34.4 (else v0.0.0-master) ---
kubernetes_ldflags() {
    local gomod_info="$1"
    local minor build_date flags="-s -w" pkg
    minor=$(cut -d. -f2 <<<"$kubernetes_version")
    # The release's own date (from the module proxy), so that a rebuild is the same binary.
    build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$gomod_info")
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        # The module zip carries no commit: gitTreeState "archive" is what Kubernetes's own
        # build says for a tree without git.
        flags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitVersion=${kubernetes_version}"
        flags+=" -X ${pkg}.gitCommit= -X ${pkg}.gitTreeState=archive -X ${pkg}.buildDate=${build_date}"
    done
    printf '%s\n' "$flags"
}

# --- one Kubernetes binary, built in the wrapper module ---
build_kubernetes_binary() {
    local dir="$1" bin_dir="$2" ldflags="$3" name="$4"
    local started=$SECONDS
    (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$dir/out/$name" "${kubernetes_module}/cmd/${name}") \
        || fatal "building ${name} ${kubernetes_version} failed"
    if [[ $name == kubectl ]]; then
        install_binary "$dir/out/$name" "$bin_dir/$name" "$kubernetes_version" "$kubernetes_version" version --client
    else
        install_binary "$dir/out/$name" "$bin_dir/$name" "$kubernetes_version" "Kubernetes $kubernetes_version" --version
    fi
    info "built ${name} ${kubernetes_version} in $((SECONDS - started)) s"
}

# --- the Kubernetes binaries whose stamps do not match ---
install_kubernetes() {
    local bin_dir="$1" build_dir="$2"
    local stale=() name
    for name in "${kubernetes_binaries[@]}"; do
        is_current "$bin_dir/$name" "$kubernetes_version" || stale+=("$name")
    done
    ((${#stale[@]} > 0)) || return 0
    local dir="$build_dir/kubernetes" started=$SECONDS
    info "building ${stale[*]} ${kubernetes_version} (about 5 minutes the first time)"
    prepare_kubernetes_module "$dir"
    info "resolved the modules in $((SECONDS - started)) s"
    local info_file ldflags
    info_file=$(go mod download -json "${kubernetes_module}@${kubernetes_version}" | sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p')
    ldflags=$(kubernetes_ldflags "$info_file")
    for name in "${stale[@]}"; do
        build_kubernetes_binary "$dir" "$bin_dir" "$ldflags" "$name"
    done
}

# --- etcd, from a module that requires its server module (whose package is etcd's main) ---
install_etcd() {
    local bin_dir="$1" build_dir="$2"
    is_current "$bin_dir/etcd" "$etcd_version" && return 0
    local dir="$build_dir/etcd" started=$SECONDS
    info "building etcd ${etcd_version}"
    mkdir -p "$dir"
    printf 'module etcd-build\n\ngo 1.26.0\n\nrequire %s %s\n\ntool %s\n' "$etcd_module" "$etcd_version" "$etcd_module" >"$dir/go.mod"
    (cd "$dir" && go mod tidy) || fatal "go mod tidy failed in ${dir}"
    (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$dir/out/etcd" "$etcd_module") || fatal "building etcd ${etcd_version} failed"
    install_binary "$dir/out/etcd" "$bin_dir/etcd" "$etcd_version" "etcd Version: ${etcd_version#v}" --version
    info "built etcd ${etcd_version} in $((SECONDS - started)) s"
}

# --- a module's directory in the module cache, downloaded if need be ---
module_dir() {
    local module="$1" version="$2" dir
    dir=$(go mod download -json "${module}@${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $dir && -d $dir ]] || fatal "could not download ${module}@${version}"
    printf '%s\n' "$dir"
}

# --- a program built in its own module's directory (read-only in the module cache), with the
# go build flags its Makefile uses:
# build_in_module BIN_DIR BUILD_DIR NAME MODULE VERSION PACKAGE VERSION_FLAG EXPECTED GO_FLAGS... ---
build_in_module() {
    local bin_dir="$1" build_dir="$2" name="$3" module="$4" version="$5" package="$6" version_flag="$7" expected="$8"
    shift 8
    is_current "$bin_dir/$name" "$version" && return 0
    local started=$SECONDS dir
    info "building ${name} ${version}"
    dir=$(module_dir "$module" "$version")
    mkdir -p "$build_dir/out"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=readonly" go build -trimpath "$@" -o "$build_dir/out/$name" "$package") ||
        fatal "building ${name} ${version} failed"
    install_binary "$build_dir/out/$name" "$bin_dir/$name" "$version" "$expected" "$version_flag"
    info "built ${name} ${version} in $((SECONDS - started)) s"
}

# --- CoreDNS, as its Makefile builds it: CGO_ENABLED=0, tag grpcnotrace, -s -w, the commit
# stamp (here the version: a module zip has no commit) ---
install_coredns() {
    build_in_module "$1" "$2" coredns "$coredns_module" "$coredns_version" . -version "CoreDNS-${coredns_version#v}" \
        -tags grpcnotrace -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${coredns_version}"
}

# --- kube-router, as its Makefile builds it (CGO_ENABLED=0, the version stamped) ---
install_kube_router() {
    build_in_module "$1" "$2" kube-router "$kube_router_module" "$kube_router_version" ./cmd/kube-router --version "$kube_router_version" \
        -ldflags "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${kube_router_version}"
}

# --- pause, as build/pause/Makefile builds it: -Os -Wall -Werror -static, the version defined ---
install_pause() {
    local bin_dir="$1"
    is_current "$bin_dir/pause" "$pause_version" && return 0
    command -v gcc >/dev/null || fatal "gcc is required to build pause (apt-get install gcc libc6-dev)"
    local dir
    dir=$(module_dir "$kubernetes_module" "$kubernetes_version")
    gcc -Os -Wall -Werror -static "-DVERSION=v${pause_version}" -o "$bin_dir/pause.partial" "$dir/build/pause/linux/pause.c" ||
        fatal "building pause ${pause_version} failed"
    install_binary "$bin_dir/pause.partial" "$bin_dir/pause" "$pause_version" "pause.c v${pause_version}" -v
    info "built pause ${pause_version}"
}

main() {
    local repo tools
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    tools="${TOOLS_DIR:-$repo/.tools}"
    local bin_dir="$tools/bin" build_dir="$tools/kubernetes/build" name
    local up_to_date=1
    is_current "$bin_dir/etcd" "$etcd_version" || up_to_date=0
    is_current "$bin_dir/coredns" "$coredns_version" || up_to_date=0
    is_current "$bin_dir/kube-router" "$kube_router_version" || up_to_date=0
    is_current "$bin_dir/pause" "$pause_version" || up_to_date=0
    for name in "${kubernetes_binaries[@]}"; do
        is_current "$bin_dir/$name" "$kubernetes_version" || up_to_date=0
    done
    if ((up_to_date)); then
        info "etcd ${etcd_version}, Kubernetes ${kubernetes_version}, coredns ${coredns_version}, kube-router ${kube_router_version} and pause ${pause_version} are up to date in ${bin_dir}"
        return 0
    fi
    setup_go
    mkdir -p "$bin_dir" "$build_dir"
    install_etcd "$bin_dir" "$build_dir"
    install_kubernetes "$bin_dir" "$build_dir"
    install_coredns "$bin_dir" "$build_dir"
    install_kube_router "$bin_dir" "$build_dir"
    install_pause "$bin_dir"
}

main "$@"

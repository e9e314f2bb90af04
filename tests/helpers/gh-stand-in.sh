#!/usr/bin/env bash
# Test stand-in for GitHub's CLI, at GitHub's API boundary (GitHub cannot be reached here). It
# refuses to run without GH_TOKEN, as gh does in a workflow; records each call's arguments in
# $GH_STAND_IN/calls; keeps what `secret set NAME` reads on stdin in $GH_STAND_IN/secrets/NAME
# (the repository's secret store, mode 0600) and the token it was given in
# $GH_STAND_IN/secrets/NAME.token; and keeps each `issue create --body-file F` body as
# $GH_STAND_IN/issues/N.md.
set -euo pipefail
dir=${GH_STAND_IN:?GH_STAND_IN must name the stand-in directory}
[[ -n ${GH_TOKEN:-} ]] || { echo "gh: To use GitHub CLI in a GitHub Actions workflow, set the GH_TOKEN environment variable." >&2; exit 4; }
printf '%s\n' "$*" >> "$dir/calls"
case "${1:-} ${2:-}" in
    "secret set")
        name=$3
        mkdir -p "$dir/secrets"
        (umask 077; cat > "$dir/secrets/$name"; printf '%s' "$GH_TOKEN" > "$dir/secrets/$name.token")
        printf 'Set Actions secret %s\n' "$name" >&2
        ;;
    "issue create")
        mkdir -p "$dir/issues"
        n=$(( $(find "$dir/issues" -name '*.md' | wc -l) + 1 ))
        while (($#)); do
            if [[ $1 == --body-file ]]; then cp "$2" "$dir/issues/$n.md"; fi
            shift
        done
        echo "https://github.com/stand-in/issues/$n"
        ;;
esac

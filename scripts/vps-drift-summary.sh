#!/usr/bin/env bash
# Summarises drift on the VPS from the output of `pulumi up --refresh` or `pulumi preview
# --refresh`, in Markdown for a workflow run's summary: each VPS step that had drifted, each
# difference its check named, and whether this run applied the step again.
# Usage: vps-drift-summary.sh LOG
# The differences come from the VPS steps' checks ("overlay: the VPS step STEP has drifted:
# ..."), which never print a file's content. Prints one line when nothing drifted.
set -euo pipefail

[[ $# -eq 1 && -r $1 ]] || { printf 'usage: %s LOG (the output of pulumi up or preview with --refresh)\n' "$0" >&2; exit 2; }
log="$1"
readonly marker='overlay: the VPS step '

# "STEP<TAB>difference", once each (Pulumi shows a message both as it comes and at the end).
found=$(grep -o "${marker}[a-z0-9-]* has drifted: .*" "$log" | sed "s/^${marker}\([a-z0-9-]*\) has drifted: /\1\t/" | sort -u || true)
if [[ -z $found ]]; then
    printf 'No drift on the VPS: every step matched what it applied.\n'
    exit 0
fi

printf '### Drift on the VPS\n\n'
cut -f1 <<<"$found" | sort -u | while read -r step; do
    if grep -Eq "pulumi-nodejs:dynamic:Resource [^ ]+-${step}-state updated" "$log"; then
        outcome="repaired: this run applied the step again"
    else
        outcome="not repaired by this run; the next \`pulumi up\` applies the step again"
    fi
    printf -- '- **%s** (%s):\n' "$step" "$outcome"
    awk -F '\t' -v step="$step" '$1 == step { print "  - " $2 }' <<<"$found"
done

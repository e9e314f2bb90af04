#!/usr/bin/env bash
# Waits, for a bounded time, until a node of the given name has registered with headscale,
# then prints `headscale nodes list-routes -o json`.
#   wait-for-node.sh NODE_NAME TIMEOUT_SECONDS HEADSCALE_COMMAND...
# HEADSCALE_COMMAND is how to run the headscale CLI, e.g. `kubectl exec ... -- headscale`.
set -euo pipefail

fatal() { printf 'overlay: error: %s\n' "$*" >&2; exit 1; }

main() {
    (($# >= 3)) || fatal "usage: wait-for-node.sh NODE_NAME TIMEOUT_SECONDS HEADSCALE_COMMAND..."
    local node="$1" timeout="$2" deadline output
    shift 2
    deadline=$((SECONDS + timeout))
    while :; do
        if output=$("$@" nodes list-routes --output json 2>&1) && [[ $output == *"\"$node\""* ]]; then
            printf '%s\n' "$output"
            return 0
        fi
        ((SECONDS < deadline)) || fatal "the node '$node' did not register with headscale within ${timeout}s; is the subnet router running, and does its Secret hold a valid key?"
        sleep 5
    done
}

main "$@"

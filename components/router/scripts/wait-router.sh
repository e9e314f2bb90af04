#!/usr/bin/env bash
# Waits until a router's Deployment has rolled out (its pod of the current template Ready), for
# at most TIMEOUT_SECONDS. An image that cannot be pulled fails it sooner, naming the image and
# the kubelet's reason: once the kubelet has failed to pull it for PULL_GRACE_SECONDS (a first
# failure may pass; a wrong name or a registry that refuses does not).
#   wait-router.sh DEPLOYMENT SELECTOR TIMEOUT_SECONDS PULL_GRACE_SECONDS KUBECTL_COMMAND...
# KUBECTL_COMMAND is kubectl with the stack's kubeconfig, context and namespace.
set -euo pipefail

fatal() { printf 'overlay: error: %s\n' "$*" >&2; exit 1; }
info() { printf 'overlay: %s\n' "$*" >&2; }

# --- the pods' containers that wait for an image: "CONTAINER<TAB>IMAGE<TAB>REASON<TAB>MESSAGE" ---
image_failures() {
    "$@" get pods --selector="$selector" \
        -o 'jsonpath={range .items[*]}{range .status.containerStatuses[*]}{.name}{"\t"}{.image}{"\t"}{.state.waiting.reason}{"\t"}{.state.waiting.message}{"\n"}{end}{end}' 2>/dev/null |
        grep -E $'\t(ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull)\t' || true
}

main() {
    (($# >= 5)) || fatal "usage: wait-router.sh DEPLOYMENT SELECTOR TIMEOUT_SECONDS PULL_GRACE_SECONDS KUBECTL_COMMAND..."
    local deployment="$1" timeout="$3" grace="$4"
    selector="$2"
    shift 4
    local deadline=$((SECONDS + timeout)) failing_since="" failure
    info "waiting up to ${timeout} s for ${deployment} to be ready"
    while ((SECONDS < deadline)); do
        if "$@" rollout status "deployment/$deployment" --timeout=1s >/dev/null 2>&1; then
            info "${deployment} is ready"
            return 0
        fi
        failure=$(image_failures "$@" | head -n 1)
        if [[ -z $failure ]]; then
            failing_since=""
        elif [[ -z $failing_since ]]; then
            failing_since=$SECONDS
        elif ((SECONDS - failing_since >= grace)); then
            local container image reason message
            IFS=$'\t' read -r container image reason message <<<"$failure"
            fatal "the router ${deployment} cannot start: the image ${image} of its ${container} container cannot be pulled (${reason}): ${message}"
        fi
        sleep 2
    done
    fatal "the router ${deployment} was not ready after ${timeout} s; \`kubectl describe pods -l ${selector}\` in its namespace says why"
}

main "$@"

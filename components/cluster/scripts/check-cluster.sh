#!/usr/bin/env bash
# Checks, before anything is created in the home cluster, that kubectl reaches it with the
# stack's kubeconfig and context, and that this identity may create namespaces and exec into
# pods (the key steps run the headscale CLI through `kubectl exec`).
#   check-cluster.sh KUBECONFIG CONTEXT NAMESPACE   ("" for kubectl's default kubeconfig or context)
set -euo pipefail

fatal() { printf 'overlay: error: %s\n' "$*" >&2; exit 1; }

main() {
    (($# == 3)) || fatal "usage: check-cluster.sh KUBECONFIG CONTEXT NAMESPACE"
    local kubeconfig="$1" context="$2" namespace="$3"
    local -a flags=(--request-timeout=20s)
    [[ -z $kubeconfig ]] || flags+=("--kubeconfig=$kubeconfig")
    [[ -z $context ]] || flags+=("--context=$context")
    local where
    where="the home cluster (kubeconfig ${kubeconfig:-from \$KUBECONFIG or ~/.kube/config}, context ${context:-the current one})"
    command -v kubectl >/dev/null || fatal "kubectl is not on PATH: install it to reach $where"

    local errors answer
    errors=$(mktemp)
    # shellcheck disable=SC2064 # the file's name is known now
    trap "rm -f '$errors'" EXIT
    if ! kubectl "${flags[@]}" get --raw=/version >/dev/null 2>"$errors"; then
        fatal "cannot reach $where; kubectl says: $(tail -n 1 "$errors") Check the stack's kubeconfig and kubeContext, and that the cluster's API server answers from here."
    fi
    answer=$(kubectl "${flags[@]}" auth can-i create namespaces 2>"$errors") || true
    [[ $answer == yes ]] || fatal "$where answers, but this identity may not create namespaces (kubectl auth can-i create namespaces: ${answer:-$(tail -n 1 "$errors")})"
    answer=$(kubectl "${flags[@]}" auth can-i create pods --subresource=exec --namespace="$namespace" 2>"$errors") || true
    [[ $answer == yes ]] || fatal "$where answers, but this identity may not exec into pods in $namespace (kubectl auth can-i create pods --subresource=exec: ${answer:-$(tail -n 1 "$errors")})"
    printf 'overlay: %s answers, and this identity may create namespaces and exec into pods\n' "$where" >&2
}

main "$@"

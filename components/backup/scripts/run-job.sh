#!/usr/bin/env bash
# Runs one Job in the home cluster and waits for it, with the stack's kubeconfig and context:
# the backup before a headscale upgrade, or a restore. The Job's manifest comes on stdin.
#   run-job.sh KUBECONFIG CONTEXT NAMESPACE backup|restore TIMEOUT_SECONDS
# backup:  skipped while there is no headscale yet (a fresh install has nothing to back up).
# restore: once the job has verified and staged the backup, restarts headscale, whose init
#          container moves it into place, and waits until headscale is ready again.
# A failed job fails this script with the job's own reason; for a restore, headscale is
# then left as it was.
set -euo pipefail

fatal() { printf 'overlay: error: %s\n' "$*" >&2; exit 1; }
info() { printf 'overlay: %s\n' "$*" >&2; }

main() {
    (($# == 5)) || fatal "usage: run-job.sh KUBECONFIG CONTEXT NAMESPACE backup|restore TIMEOUT_SECONDS"
    local kubeconfig="$1" context="$2" namespace="$3" kind="$4" timeout="$5"
    local -a kubectl=(kubectl --request-timeout=30s "--namespace=$namespace")
    [[ -z $kubeconfig ]] || kubectl+=("--kubeconfig=$kubeconfig")
    [[ -z $context ]] || kubectl+=("--context=$context")
    local manifest job
    manifest=$(cat)

    if [[ $kind == backup ]] && ! "${kubectl[@]}" get statefulset headscale >/dev/null 2>&1; then
        info "no headscale running yet: nothing to back up before the change"
        return 0
    fi
    job=$("${kubectl[@]}" create -o name -f - <<<"$manifest") || fatal "could not create the $kind job"
    info "started $job; waiting up to ${timeout} s"

    local status="" deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        status=$("${kubectl[@]}" get "$job" -o 'jsonpath={.status.succeeded}/{.status.failed}/{.spec.backoffLimit}')
        [[ $status != 1/* ]] || break
        local failed="${status#*/}"
        failed="${failed%/*}"
        [[ -z $failed ]] || ((failed <= ${status##*/})) || break
        sleep 2
    done
    if [[ $status != 1/* ]]; then
        local reason
        reason=$("${kubectl[@]}" get pods --selector="batch.kubernetes.io/job-name=${job#*/}" \
            -o 'jsonpath={range .items[*]}{range .status.containerStatuses[*]}{.state.terminated.message}{end}{end}' 2>/dev/null || true)
        reason=$(grep -o 'overlay-backup: error: .*' <<<"$reason" | tail -n 1 || true)
        [[ $kind != restore ]] || reason="${reason:-the job did not finish in ${timeout} s}; headscale was not touched"
        fatal "the $kind job ($job) failed: ${reason:-it did not finish in ${timeout} s}"
    fi
    info "$job succeeded"

    if [[ $kind == restore ]]; then
        "${kubectl[@]}" delete pod headscale-0 --wait=true >/dev/null
        "${kubectl[@]}" rollout status statefulset/headscale "--timeout=${timeout}s" >&2 ||
            fatal "headscale did not become ready after the restore; kubectl ${namespace:+-n $namespace }logs headscale-0 -c restore shows what was moved"
        info "headscale runs on the restored data"
    fi
}

main "$@"

#!/usr/bin/env bash
# kubectl for the end-to-end test. Every command goes to the real kubectl, with its flags,
# except `exec`: the test's containers are processes in this namespace, so once the real
# kubectl has found the pod Running with the same kubeconfig, context and namespace, the
# command runs here with that container's environment, as written by the node agent.
#
# Reads: E2E_KUBECTL (the real kubectl), E2E_EXEC_DIR (<dir>/<namespace>/<pod>/<container>.env).
set -euo pipefail

fatal() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

main() {
    local real="${E2E_KUBECTL:?E2E_KUBECTL names the real kubectl}"
    local exec_dir="${E2E_EXEC_DIR:?E2E_EXEC_DIR names the node agent exec directory}"
    local -a words=("$@")
    local i verb_at=-1
    for ((i = 0; i < ${#words[@]}; i++)); do
        [[ ${words[i]} == -- ]] && break
        if [[ ${words[i]} == exec ]]; then
            verb_at=$i
            break
        fi
    done
    ((verb_at >= 0)) || exec "$real" "$@"

    # Flags before `exec` say how to reach the cluster; the namespace is taken out of them.
    local -a connection=()
    local namespace=default
    for ((i = 0; i < verb_at; i++)); do
        case ${words[i]} in
        --namespace=*) namespace=${words[i]#--namespace=} ;;
        -n | --namespace)
            i=$((i + 1))
            namespace=${words[i]}
            ;;
        *) connection+=("${words[i]}") ;;
        esac
    done
    local pod="" container="" stdin=0
    for ((i = verb_at + 1; i < ${#words[@]}; i++)); do
        case ${words[i]} in
        --) break ;;
        -c | --container)
            i=$((i + 1))
            container=${words[i]}
            ;;
        --container=*) container=${words[i]#--container=} ;;
        -i | --stdin | -it | -ti) stdin=1 ;;
        -n | --namespace)
            i=$((i + 1))
            namespace=${words[i]}
            ;;
        --namespace=*) namespace=${words[i]#--namespace=} ;;
        -*) ;;
        *) [[ -n $pod ]] || pod=${words[i]} ;;
        esac
    done
    [[ ${words[i]:-} == -- ]] || fatal "kubectl wrapper: exec needs -- before the command"
    [[ -n $pod ]] || fatal "kubectl wrapper: exec names no pod"
    local -a command=("${words[@]:i+1}")

    local phase
    phase=$("$real" "${connection[@]}" --namespace="$namespace" get pod "$pod" -o 'jsonpath={.status.phase}')
    [[ $phase == Running ]] || fatal "unable to upgrade connection: pod $pod is $phase, not Running"
    [[ -n $container ]] || fatal "kubectl wrapper: name the container with -c"
    local env_file="$exec_dir/$namespace/$pod/$container.env"
    [[ -f $env_file ]] || fatal "unable to upgrade connection: container $container not found in pod $pod"
    # shellcheck source=/dev/null
    source "$env_file"
    if ((stdin)); then
        exec "${command[@]}"
    fi
    exec "${command[@]}" </dev/null
}

main "$@"

#!/bin/sh
# A router's end of the reverse tunnel. Only one SSH connection can hold the VPS's tunnel port,
# so with several routers one holds it and the others wait. Each keeps one connection open under autossh, a
# control master with no forward of its own, and asks for the forward over it: at once on each
# new connection, then every RETRY_SECONDS while another holds it. sshd refuses while another
# connection holds the port and grants it once that connection is gone. No try is a new login,
# so the VPS's SSH rate limit never sees the standbys.
#   hold-tunnel.sh RETRY_SECONDS CONTROL_PATH FORWARD DESTINATION AUTOSSH_COMMAND...
set -eu

say() { printf 'overlay: %s\n' "$*"; }

# Stopping (the pod is deleted or drained) while holding the port: give the port up but keep
# the connection a moment, so that another router takes the port for new connections while
# the sessions already riding this one (DERP, control) carry on until then.
hand_over() {
    case $state in
    holding*)
        ssh -o ControlPath="$control" -O cancel -R "$forward" "$destination" >/dev/null 2>&1 || return 0
        say "stopping: gave the tunnel port up for another router"
        sleep $((retry + 1))
        ;;
    esac
}

main() {
    if [ "$#" -lt 5 ]; then
        say "usage: hold-tunnel.sh RETRY_SECONDS CONTROL_PATH FORWARD DESTINATION AUTOSSH_COMMAND..." >&2
        exit 2
    fi
    retry=$1 control=$2 forward=$3 destination=$4
    shift 4
    # "holding MASTER" or "standby MASTER" (MASTER is ssh's "Master running (pid=N)": a new one
    # is a new connection, which holds nothing yet); each change is said once, so the log shows
    # who holds the port. A new connection asks at once, a standby every RETRY_SECONDS.
    state="" waited=0
    # ssh says "remote port forwarding failed" at each refused request, every RETRY_SECONDS while
    # another router holds the port: left out, as the standby line above says it once.
    log="$control.log"
    rm -f "$log"
    mkfifo "$log"
    while IFS= read -r line; do
        case $line in
        *"remote port forwarding failed"*) ;;
        *) printf '%s\n' "$line" >&2 ;;
        esac
    done <"$log" &
    # Every client relayed through the tunnel is one open file of ssh's here: a container
    # runtime's default soft limit of 1024 would stop the tunnel near 1,000 clients.
    # shellcheck disable=SC3045 # not POSIX, but busybox ash and dash have ulimit -H and -S
    if hard=$(ulimit -Hn 2>/dev/null) && [ "$hard" != unlimited ] && [ "$(ulimit -Sn)" -lt "$hard" ]; then ulimit -Sn "$hard"; fi
    # With AES instructions AES-GCM is the faster cipher (bench:edge: the tunnel alone 569 →
    # 669 MB/s); without them chacha20-poly1305, OpenSSH's default, stays first. "^" puts the
    # two at the head of OpenSSH's default list, so every other cipher stays a fallback.
    if grep -qw aes /proc/cpuinfo 2>/dev/null; then
        program=$1
        shift
        set -- "$program" -o "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com" "$@"
    fi
    "$@" 2>"$log" &
    autossh=$!
    trap 'hand_over; kill -TERM "$autossh" 2>/dev/null || true' TERM INT
    while kill -0 "$autossh" 2>/dev/null; do
        if master=$(ssh -o ControlPath="$control" -O check "$destination" 2>&1); then
            if [ "$state" != "holding $master" ] && { [ "$state" != "standby $master" ] || [ "$waited" -ge "$retry" ]; }; then
                waited=0
                if ssh -o ControlPath="$control" -O forward -R "$forward" "$destination" >/dev/null 2>&1; then
                    say "this router holds the tunnel"
                    state="holding $master"
                else
                    [ "${state%% *}" = standby ] || say "standby: another router holds the tunnel; asking again every ${retry}s"
                    state="standby $master"
                fi
            fi
        elif [ -n "$state" ]; then
            say "no connection to the VPS; autossh is reconnecting"
            state=""
        fi
        waited=$((waited + 1))
        sleep 1 &
        wait $! || true
    done
    wait "$autossh"
}

main "$@"

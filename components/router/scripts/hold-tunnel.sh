#!/bin/sh
# A router's end of the reverse tunnel. It keeps one SSH connection to the VPS open, a control
# master with no forward of its own, and asks for the forward over it: at once on each new
# connection, then every RETRY_SECONDS while another router holds the VPS's one tunnel port.
# sshd refuses while another connection holds the port and grants it once that connection is
# gone; no try is a new login, so the VPS's SSH rate limit never sees the standbys.
#
# The connection's session carries a heartbeat, a line every HEARTBEAT_SECONDS: the tunnel
# user's login shell on the VPS ends a connection whose heartbeat stops, so that a router lost
# with its connection open frees the port for the next one.
#
# When the connection ends, ssh has said why on stderr (which goes to the container's log, as
# everything here does) and this says how it ended and when it connects again: at once after a
# connection that lasted MAX_WAIT_SECONDS or more, else after RETRY_SECONDS, doubling each time
# up to MAX_WAIT_SECONDS, so that a VPS that refuses (a wrong host key, a removed user) is not
# hammered.
#   hold-tunnel.sh RETRY_SECONDS MAX_WAIT_SECONDS HEARTBEAT_SECONDS CONTROL_PATH FORWARD DESTINATION SSH_COMMAND...
set -eu

say() { printf 'overlay: %s\n' "$*"; }

# --- the seconds since the epoch ---
now() { date +%s; }

# Stopping (the pod is deleted or drained) while holding the port: give the port up but keep
# the connection a moment, so that another router takes the port for new connections while
# the sessions already riding this one (DERP, control) carry on until then. Two of the
# standbys' intervals and a second: each standby has asked again by then, even on a busy node,
# so the sessions that reconnect when this connection ends find the port held.
hand_over() {
    case $state in
    holding*)
        ssh -o ControlPath="$control" -O cancel -R "$forward" "$destination" >/dev/null 2>&1 || return 0
        say "stopping: gave the tunnel port up for another router"
        sleep $((2 * retry + 1))
        ;;
    esac
}

stop() {
    hand_over
    exit 0
}

# --- on any exit: end the connection and the message relay with it ---
clean_up() {
    [ -z "$ssh_pid" ] || kill -TERM "$ssh_pid" 2>/dev/null || true
    [ -z "$relay_pid" ] || kill -TERM "$relay_pid" 2>/dev/null || true
    rm -f "$log"
}

# --- ssh's stderr, less the line it writes at each refused forward request: every
# RETRY_SECONDS while another router holds the port (the standby line says it once), and
# less sshd's word that the tunnel user has no home to start its session in. Opened
# read-write, the pipe never reaches its end between one ssh and the next ---
relay_ssh_messages() {
    rm -f "$log"
    mkfifo "$log"
    while IFS= read -r line; do
        case $line in
        *"remote port forwarding failed"* | "Could not chdir to home directory"*) ;;
        *) printf '%s\n' "$line" >&2 ;;
        esac
    done <>"$log" &
    relay_pid=$!
}

# --- the sessions' input, fd 3: a pipe opened read-write and unlinked at once, so that it
# stays open from one ssh to the next and leaves nothing behind ---
open_heartbeat_pipe() {
    rm -f "$control.heartbeat"
    mkfifo "$control.heartbeat"
    exec 3<>"$control.heartbeat"
    rm -f "$control.heartbeat"
}

# --- one connection, until it ends: asks for the forward over it as it goes ---
# "holding MASTER" or "standby MASTER" (MASTER is ssh's "Master running (pid=N)"); each change
# is said once, so the log shows who holds the port.
hold_connection() {
    "$@" <&3 2>"$log" &
    ssh_pid=$!
    state="" waited=0 next_beat=0
    while kill -0 "$ssh_pid" 2>/dev/null; do
        if [ "$next_beat" -le 0 ]; then
            printf '\n' >&3
            next_beat=$beat
        fi
        next_beat=$((next_beat - 1))
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
        fi
        waited=$((waited + 1))
        sleep 1 &
        wait $! || true
    done
    status=0
    wait "$ssh_pid" || status=$?
    ssh_pid="" state=""
}

main() {
    if [ "$#" -lt 7 ]; then
        say "usage: hold-tunnel.sh RETRY_SECONDS MAX_WAIT_SECONDS HEARTBEAT_SECONDS CONTROL_PATH FORWARD DESTINATION SSH_COMMAND..." >&2
        exit 2
    fi
    retry=$1 max_wait=$2 beat=$3 control=$4 forward=$5 destination=$6
    shift 6
    state="" ssh_pid="" relay_pid="" log="$control.log"
    trap clean_up EXIT
    trap stop TERM INT
    relay_ssh_messages
    open_heartbeat_pipe
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
    wait_seconds=$retry
    while :; do
        started=$(now)
        hold_connection "$@"
        lasted=$(($(now) - started))
        if [ "$lasted" -ge "$max_wait" ]; then
            wait_seconds=0
        fi
        say "ssh exited with status $status after ${lasted}s; connecting again in ${wait_seconds}s"
        sleep "$wait_seconds" &
        wait $! || true
        if [ "$wait_seconds" -eq 0 ]; then
            wait_seconds=$retry
        elif [ $((wait_seconds * 2)) -le "$max_wait" ]; then
            wait_seconds=$((wait_seconds * 2))
        else
            wait_seconds=$max_wait
        fi
    done
}

main "$@"

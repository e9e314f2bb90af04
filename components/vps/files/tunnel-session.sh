#!/usr/bin/env bash
# The tunnel user's login shell on the VPS, installed by the overlay program. It runs no
# command: whatever a client asks to run (sshd passes it as `-c COMMAND`) is ignored.
#
# A router's ssh sends a line on its session every few seconds. When none has come for
# OVERLAY_TUNNEL_SILENCE_SECONDS (set by sshd's SetEnv for this user), this ends the
# connection it belongs to, so that a router lost with its connection open (its node's power
# or network gone) frees the tunnel port for the next router. sshd's own ClientAlive probes
# cannot be relied on for that: sshd sends one only after a whole interval in which nothing
# happened on any of the connection's sockets, and nginx connecting to the tunnel port on
# behalf of every client that retries is something happening.
set -euo pipefail

silence=${OVERLAY_TUNNEL_SILENCE_SECONDS:-15}
client=${SSH_CLIENT:-"a client"}
client=${client%% *}

# read's status is above 128 when it timed out, 1 when the client closed the session.
status=0
while :; do
    IFS= read -r -t "$silence" _ || { status=$?; break; }
done
if ((status > 128)); then
    why="no heartbeat from $client for ${silence}s"
else
    why="$client closed its session"
fi

# The connection is this process's parent, sshd (sshd-session since OpenSSH 9.8) running as
# this user. Once that has gone (the client closed the connection), there is nothing to end.
connection="" name=""
while read -r key value; do
    if [[ $key == PPid: ]]; then connection=$value; fi
done </proc/self/status
read -r name 2>/dev/null </proc/"$connection"/comm || true
case $name in
sshd | sshd-session)
    logger -t overlay-tunnel -- "$why: ending its connection, which frees the tunnel port" 2>/dev/null || true
    kill -TERM "$connection"
    ;;
esac

#!/usr/bin/env bash
# A stand-in for systemctl in the step tests (the test machine runs no systemd). It keeps
# which units are enabled and active in $SYSTEMCTL_STATE and logs every call that would
# change a service, so a test can see what a step restarted.
set -euo pipefail

state="${SYSTEMCTL_STATE:?SYSTEMCTL_STATE must be set}"
mkdir -p "$state/enabled" "$state/active"
args=()
for arg in "$@"; do
    [[ $arg == --quiet || $arg == -q ]] || args+=("$arg")
done
verb="${args[0]:-}"
unit="${args[1]:-}"
unit="${unit%.service}"

case "$verb" in
    is-active) [[ -e $state/active/$unit ]] ;;
    is-enabled) [[ -e $state/enabled/$unit ]] ;;
    enable) touch "$state/enabled/$unit"; echo "enable $unit" >>"$state/log" ;;
    disable) rm -f "$state/enabled/$unit"; echo "disable $unit" >>"$state/log" ;;
    start | restart | reload-or-restart) touch "$state/active/$unit"; echo "$verb $unit" >>"$state/log" ;;
    reload)
        [[ -e $state/active/$unit ]] || { echo "$unit is not active, cannot reload" >&2; exit 1; }
        echo "reload $unit" >>"$state/log"
        ;;
    daemon-reload) echo "daemon-reload" >>"$state/log" ;;
    stop) rm -f "$state/active/$unit"; echo "stop $unit" >>"$state/log" ;;
    *) echo "systemctl stub: unsupported: $*" >&2; exit 1 ;;
esac

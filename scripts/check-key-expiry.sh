#!/usr/bin/env bash
# Fails when the router's preauth key expires within DAYS days (default 14), naming the date.
# The scheduled run checks it whatever else happened, so that a schedule that has stopped
# renewing the key is red, with an issue, weeks before the key runs out and the LAN goes dark.
# Usage: check-key-expiry.sh EXPIRY [DAYS]
#   EXPIRY: the stack output routerKeyExpires (an RFC 3339 time).
#   OVERLAY_TODAY=YYYY-MM-DD checks as of that day, as the program plans with it.
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { printf 'usage: %s EXPIRY [DAYS]\n' "$0" >&2; exit 2; }
expiry="$1"
days="${2:-14}"
[[ $days =~ ^[0-9]+$ ]] || { printf 'check-key-expiry: DAYS must be a whole number, not "%s"\n' "$days" >&2; exit 2; }

# ::error:: lines are shown by GitHub Actions as the run's annotations.
error() { printf '::error::%s\n' "$*"; exit 1; }

[[ -n $expiry ]] || error "the router key's expiry could not be read: the stack output routerKeyExpires is empty"
expires_at=$(date -u -d "$expiry" +%s 2>/dev/null) || error "the router key's expiry could not be read: the stack output routerKeyExpires is \"${expiry}\""
if [[ -n ${OVERLAY_TODAY:-} ]]; then
    now=$(date -u -d "$OVERLAY_TODAY" +%s 2>/dev/null) || { printf 'check-key-expiry: OVERLAY_TODAY is not a date: "%s"\n' "$OVERLAY_TODAY" >&2; exit 2; }
else
    now=$(date -u +%s)
fi
on=$(date -u -d "@${expires_at}" '+%F %H:%M UTC')
left=$(( (expires_at - now) / 86400 ))

if (( expires_at <= now )); then
    error "the router key expired on ${on}: the subnet router cannot log in again until a pulumi up mints a new one"
elif (( expires_at - now < days * 86400 )); then
    error "the router key expires on ${on}, in ${left} days (under ${days}): the scheduled pulumi up has not renewed it; run pulumi up for the stack"
fi
printf 'The router key expires on %s, in %d days.\n' "$on" "$left"

#!/usr/bin/env bash
# A stand-in for certbot in the step tests: it cannot reach Let's Encrypt from here. It checks
# that nginx serves the webroot it was given for the name (with the HTTP-only site), then
# issues a self-signed certificate where certbot would put the real one, and logs its call.
set -euo pipefail

log="${CERTBOT_LOG:?CERTBOT_LOG must be set}"
printf '%s\n' "$*" >>"$log"
webroot="" domain=""
while (($#)); do
    case "$1" in
        -w) webroot="$2"; shift 2 ;;
        -d) domain="$2"; shift 2 ;;
        *) shift ;;
    esac
done
[[ -d $webroot && -n $domain ]] || { echo "certbot stub: need -w WEBROOT and -d DOMAIN" >&2; exit 1; }
grep -q "root $webroot;" /etc/nginx/sites-enabled/overlay-headscale || { echo "certbot stub: nginx does not serve $webroot" >&2; exit 1; }
live="/etc/letsencrypt/live/$domain"
mkdir -p "$live"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$live/privkey.pem" -out "$live/fullchain.pem" -subj "/CN=$domain" 2>/dev/null

# Step: nginx in front of headscale.
#   apply HOSTNAME TLS_MODE ACME_EMAIL WORKER_CONNECTIONS --file <site> CONTENT
#         --file <site>.http-only CONTENT --file <nginx.service drop-in> CONTENT
#         [--file /etc/ssl/overlay/HOSTNAME.crt CONTENT]
#     TLS_MODE acme: certbot (webroot) issues the certificate, serving the challenge with the
#     HTTP-only site first; certbot's renewal timer stays on and reloads nginx.
#     TLS_MODE provided: the certificate comes as a file; the key was installed by tls-key.
#     WORKER_CONNECTIONS: raised to this in nginx.conf's events block, the one line changed
#     there; the drop-in raises nginx's open-files limit.
#   remove HOSTNAME   the site goes, the distribution's default site and worker_connections
#                     come back, the drop-in goes
#   check  (the apply arguments)   prints how the VPS differs from them, changes nothing
# Functions from lib.sh are sent before this file.

readonly site="/etc/nginx/sites-available/overlay-headscale"
readonly enabled="/etc/nginx/sites-enabled/overlay-headscale"
readonly default_site="/etc/nginx/sites-enabled/default"
readonly default_marker="/etc/nginx/.overlay-removed-default-site"
readonly webroot="/var/www/overlay-acme"
readonly renew_hook="/etc/letsencrypt/renewal-hooks/deploy/overlay-reload-nginx"
readonly nginx_conf="/etc/nginx/nginx.conf"
# "ORIGINAL OURS": the value we replaced ("none": the block had no such line) and ours.
readonly connections_marker="/etc/nginx/.overlay-worker-connections"
readonly limits="/etc/systemd/system/nginx.service.d/overlay-limits.conf"

# --- nginx -t with our site enabled; install_validated calls it ---
check_nginx() {
    ln -sfn "$site" "$enabled"
    nginx -t
}

# --- worker_connections in an nginx.conf's events block: its value, "none" when the block
# has no such line, nothing when there is no block this script edits (`events {` on a line
# of its own, up to a line that starts with `}`) ---
worker_connections_of() {
    awk '
        !inside && /^[ \t]*events[ \t]*\{[ \t]*$/ { inside = 1; found = "none"; next }
        inside && /^[ \t]*}/ { inside = 0; closed = 1 }
        inside && /^[ \t]*worker_connections[ \t]+[0-9]+[ \t]*;/ {
            match($0, /[0-9]+/); found = substr($0, RSTART, RLENGTH)
        }
        END { if (closed) print found }
    ' "$1"
}

# --- an nginx.conf, printed with its events block's worker_connections set to VALUE (added
# at the block's end if missing), or taken out when VALUE is "none"; every other line as it was ---
# Usage: with_worker_connections FILE VALUE
with_worker_connections() {
    awk -v value="$2" '
        !inside && /^[ \t]*events[ \t]*\{[ \t]*$/ { inside = 1; print; next }
        inside && /^[ \t]*worker_connections[ \t]+[0-9]+[ \t]*;/ {
            if (value != "none") { match($0, /^[ \t]*/); print substr($0, 1, RLENGTH) "worker_connections " value ";" }
            set = 1
            next
        }
        inside && /^[ \t]*}/ { if (!set && value != "none") print "\tworker_connections " value ";"; inside = 0 }
        { print }
    ' "$1"
}

# --- raise worker_connections to WANTED (a higher value set by hand stays); nginx -t checks
# the result, and the replaced value is kept for remove. Returns 0 when nginx.conf changed ---
raise_worker_connections() {
    local wanted="$1" current original
    current=$(worker_connections_of "$nginx_conf")
    [[ -n $current ]] || fatal "$nginx_conf has no events block this step can edit ('events {' on a line of its own); set 'worker_connections $wanted;' in it by hand"
    if [[ $current != none ]] && ((current >= wanted)); then return 1; fi
    with_worker_connections "$nginx_conf" "$wanted" >"$workdir/nginx.conf"
    install_validated "$workdir/nginx.conf" "$nginx_conf" 0644 check_nginx || return 1
    # An earlier raise keeps the distribution's value as the one to put back.
    original=$current
    [[ ! -f $connections_marker ]] || read -r original _ <"$connections_marker"
    printf '%s %s\n' "$original" "$wanted" >"$connections_marker"
    info "raised worker_connections in $nginx_conf from $current to $wanted"
}

# --- put back the value raise_worker_connections replaced, unless it was changed since ---
restore_worker_connections() {
    local original ours
    [[ -f $connections_marker ]] || return 0
    read -r original ours <"$connections_marker"
    if [[ -f $nginx_conf && $(worker_connections_of "$nginx_conf") == "$ours" ]]; then
        with_worker_connections "$nginx_conf" "$original" >"$workdir/nginx.conf"
        if install_validated "$workdir/nginx.conf" "$nginx_conf" 0644 nginx -t; then
            if [[ $original == none ]]; then info "took worker_connections out of $nginx_conf again"; else info "put worker_connections in $nginx_conf back to $original"; fi
        fi
    fi
    rm -f "$connections_marker"
}

# --- certbot's deploy hook, which reloads nginx with a renewed certificate, staged for
# install_file or check_file; prints its path ---
staged_renew_hook() {
    printf '#!/bin/sh\nsystemctl reload nginx\n' >"$workdir/renew-hook"
    printf '%s' "$workdir/renew-hook"
}

apply() {
    local hostname mode email connections changed=0 restart=0 cert
    need_root
    stage_arguments "$@"
    ((${#params[@]} == 4)) || fatal "apply needs HOSTNAME TLS_MODE ACME_EMAIL WORKER_CONNECTIONS"
    hostname="${params[0]}" mode="${params[1]}" email="${params[2]}" connections="${params[3]}"
    [[ $connections =~ ^[1-9][0-9]*$ ]] || fatal "WORKER_CONNECTIONS must be a number, not '$connections'"
    case "$mode" in
        acme) ensure_packages nginx certbot ;;
        provided) ensure_packages nginx ;;
        *) fatal "unknown TLS mode '$mode'" ;;
    esac
    install -d -m 0755 "$webroot"

    # The distribution's catch-all site would clash with ours; remember that we took it away.
    if [[ -L $default_site || -e $default_site ]]; then
        rm -f "$default_site"
        touch "$default_marker"
        changed=1
    fi

    if [[ $mode == provided ]]; then
        cert="/etc/ssl/overlay/$hostname.crt"
        [[ -f /etc/ssl/overlay/$hostname.key ]] || fatal "the TLS key for $hostname is not installed (the tls-key step runs first)"
        if install_file "$(staged "$cert")" "$cert" 0644; then changed=1; fi
    else
        cert="/etc/letsencrypt/live/$hostname/fullchain.pem"
        if [[ ! -f $cert ]]; then
            install_validated "$(staged "$site.http-only")" "$site" 0644 check_nginx || true
            systemctl reload-or-restart nginx
            info "requesting a certificate for $hostname from Let's Encrypt"
            certbot certonly --webroot -w "$webroot" -d "$hostname" --email "$email" \
                --agree-tos --no-eff-email --non-interactive --quiet
            changed=1
        fi
        install -d -m 0755 "$(dirname "$renew_hook")"
        install_file "$(staged_renew_hook)" "$renew_hook" 0755 || true
    fi

    if install_validated "$(staged "$site")" "$site" 0644 check_nginx; then changed=1; fi
    [[ -L $enabled ]] || { ln -sfn "$site" "$enabled"; changed=1; }
    if raise_worker_connections "$connections"; then changed=1; fi
    # The open-files limit is read when nginx starts: a change needs a restart, not a reload.
    if install_file "$(staged "$limits")" "$limits" 0644; then
        systemctl daemon-reload
        restart=1
    fi

    if ! systemctl is-enabled --quiet nginx; then systemctl enable --quiet nginx; fi
    if ((restart)); then
        info "nginx's open-files limit changed; restarting nginx"
        systemctl restart nginx
    elif ((changed)) || ! systemctl is-active --quiet nginx; then
        info "nginx configuration changed; reloading nginx"
        systemctl reload-or-restart nginx
    fi
}

check() {
    local hostname mode connections current
    need_root
    stage_arguments "$@"
    hostname="${params[0]}" mode="${params[1]}" connections="${params[3]}"
    check_file "$(staged "$site")" "$site" 0644
    [[ $(readlink "$enabled") == "$site" ]] || drift "$enabled does not point to $site"
    [[ ! -e $default_site ]] || drift "the distribution's default site is enabled again"
    if [[ $mode == provided ]]; then
        check_file "$(staged "/etc/ssl/overlay/$hostname.crt")" "/etc/ssl/overlay/$hostname.crt" 0644
    else
        [[ -f /etc/letsencrypt/live/$hostname/fullchain.pem ]] || drift "certbot's certificate for $hostname is missing"
        check_file "$(staged_renew_hook)" "$renew_hook" 0755
    fi
    current=$(worker_connections_of "$nginx_conf")
    if [[ ! $current =~ ^[0-9]+$ ]] || ((current < connections)); then
        drift "worker_connections in $nginx_conf is ${current:-not in an events block}, applied $connections"
    fi
    check_file "$(staged "$limits")" "$limits" 0644
    check_service nginx
}

remove() {
    local hostname="$1"
    need_root
    stage_arguments
    remove_path "$enabled" || true
    remove_path "$site" || true
    remove_path "$renew_hook" || true
    remove_path "/etc/ssl/overlay/$hostname.crt" || true
    if [[ -f $default_marker && -f /etc/nginx/sites-available/default ]]; then
        ln -sfn /etc/nginx/sites-available/default "$default_site"
    fi
    rm -f "$default_marker"
    [[ ! -d $webroot ]] || rm -rf "$webroot"
    restore_worker_connections
    # The raised limit stays in force until nginx next starts.
    if remove_path "$limits"; then
        rmdir --ignore-fail-on-non-empty "${limits%/*}"
        systemctl daemon-reload
    fi
    if command -v nginx >/dev/null 2>&1 && nginx -t >/dev/null 2>&1 && systemctl is-active --quiet nginx; then
        systemctl reload nginx
    fi
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) shift; remove "$@" ;;
        check) shift; check "$@" ;;
        *) fatal "usage: apply HOSTNAME TLS_MODE ACME_EMAIL WORKER_CONNECTIONS --file PATH CONTENT... | remove HOSTNAME | check (the apply arguments)" ;;
    esac
}

# Step: nginx in front of headscale.
#   apply HOSTNAME TLS_MODE ACME_EMAIL --file <site> CONTENT --file <site>.http-only CONTENT
#         [--file /etc/ssl/overlay/HOSTNAME.crt CONTENT]
#     TLS_MODE acme: certbot (webroot) issues the certificate, serving the challenge with the
#     HTTP-only site first; certbot's renewal timer stays on and reloads nginx.
#     TLS_MODE provided: the certificate comes as a file; the key was installed by tls-key.
#   remove HOSTNAME   the site goes and the distribution's default site comes back
# Functions from lib.sh are sent before this file.

readonly site="/etc/nginx/sites-available/overlay-headscale"
readonly enabled="/etc/nginx/sites-enabled/overlay-headscale"
readonly default_site="/etc/nginx/sites-enabled/default"
readonly default_marker="/etc/nginx/.overlay-removed-default-site"
readonly webroot="/var/www/overlay-acme"
readonly renew_hook="/etc/letsencrypt/renewal-hooks/deploy/overlay-reload-nginx"

# --- nginx -t with our site enabled; install_validated calls it ---
check_nginx() {
    ln -sfn "$site" "$enabled"
    nginx -t
}

apply() {
    local hostname mode email changed=0 cert
    need_root
    stage_arguments "$@"
    ((${#params[@]} == 3)) || fatal "apply needs HOSTNAME TLS_MODE ACME_EMAIL"
    hostname="${params[0]}" mode="${params[1]}" email="${params[2]}"
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
        printf '#!/bin/sh\nsystemctl reload nginx\n' >"$workdir/renew-hook"
        install_file "$workdir/renew-hook" "$renew_hook" 0755 || true
    fi

    if install_validated "$(staged "$site")" "$site" 0644 check_nginx; then changed=1; fi
    [[ -L $enabled ]] || { ln -sfn "$site" "$enabled"; changed=1; }

    if ! systemctl is-enabled --quiet nginx; then systemctl enable --quiet nginx; fi
    if ((changed)) || ! systemctl is-active --quiet nginx; then
        info "nginx configuration changed; reloading nginx"
        systemctl reload-or-restart nginx
    fi
}

remove() {
    local hostname="$1"
    need_root
    remove_path "$enabled" || true
    remove_path "$site" || true
    remove_path "$renew_hook" || true
    remove_path "/etc/ssl/overlay/$hostname.crt" || true
    if [[ -f $default_marker && -f /etc/nginx/sites-available/default ]]; then
        ln -sfn /etc/nginx/sites-available/default "$default_site"
    fi
    rm -f "$default_marker"
    [[ ! -d $webroot ]] || rm -rf "$webroot"
    if command -v nginx >/dev/null 2>&1 && nginx -t >/dev/null 2>&1 && systemctl is-active --quiet nginx; then
        systemctl reload nginx
    fi
}

main() {
    case "${1:-}" in
        apply) shift; apply "$@" ;;
        remove) shift; remove "$@" ;;
        *) fatal "usage: apply HOSTNAME TLS_MODE ACME_EMAIL --file PATH CONTENT... | remove HOSTNAME" ;;
    esac
}

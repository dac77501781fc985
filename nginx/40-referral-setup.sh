#!/bin/sh
# Finishes the rendered config; the official nginx image runs it from /docker-entrypoint.d/
# after 20-envsubst-on-templates.sh, and deploy/stack.sh runs it for `make stack`.
#  1. With a certificate: the HTTPS server plus a port-80 redirect; without: plain HTTP only
#     (so the first start works and certbot can answer the ACME challenge).
#  2. Flower's htpasswd from FLOWER_BASIC_AUTH ("user:password", several separated by commas).
#     No value: an empty file, so /flower/ stays locked.
#  3. /metrics' allow list (below).
set -eu

conf_dir="${NGINX_CONF_DIR:-/etc/nginx/conf.d}"
rm -f "$conf_dir/default.conf"  # the image's welcome page

if [ -s "${NGINX_SSL_CERT:-}" ] && [ -s "${NGINX_SSL_KEY:-}" ]; then
    rm -f "$conf_dir/10-referral-plain.conf"
    echo "referral: certificate $NGINX_SSL_CERT found, serving HTTPS"
else
    rm -f "$conf_dir/10-referral-redirect.conf" "$conf_dir/20-referral-https.conf"
    echo "referral: no certificate at ${NGINX_SSL_CERT:-(unset)}, serving plain HTTP only"
fi

# 3. Who may read /metrics: NGINX_METRICS_ALLOWED (compose passes METRICS_ALLOWED; CIDRs separated
#    by commas), the same list the app checks; empty: loopback and the private ranges, the app's
#    default (project/settings.py). Only address characters pass, so the list cannot add config.
metrics_allow="$conf_dir/metrics-allow.inc"
: > "$metrics_allow"
old_ifs=$IFS
IFS=','
for cidr in ${NGINX_METRICS_ALLOWED:-127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7}; do
    cidr=$(printf '%s' "$cidr" | tr -d ' ')
    [ -n "$cidr" ] || continue
    case $cidr in
        *[!0-9A-Fa-f:./]*)
            echo "referral: METRICS_ALLOWED: $cidr is not an address or CIDR" >&2
            exit 1
            ;;
    esac
    printf 'allow %s;\n' "$cidr" >> "$metrics_allow"
done
IFS=$old_ifs
echo "deny all;" >> "$metrics_allow"

htpasswd="$conf_dir/flower.htpasswd"
umask 027
: > "$htpasswd"
old_ifs=$IFS
IFS=','
for pair in ${FLOWER_BASIC_AUTH:-}; do
    user=${pair%%:*}
    password=${pair#*:}
    if [ -z "$user" ] || [ "$user" = "$pair" ]; then
        continue  # not user:password
    fi
    if command -v openssl >/dev/null 2>&1; then
        printf '%s:%s\n' "$user" "$(printf '%s' "$password" | openssl passwd -6 -stdin)" >> "$htpasswd"
    else
        # nginx reads {PLAIN}; the file never leaves this container, like the variable it came from.
        printf '%s:{PLAIN}%s\n' "$user" "$password" >> "$htpasswd"
    fi
done
IFS=$old_ifs
if [ -n "${NGINX_USER_GROUP:-}" ]; then
    chgrp "$NGINX_USER_GROUP" "$htpasswd"
fi

#!/bin/sh
# Finishes the rendered config; the official nginx image runs it from /docker-entrypoint.d/
# after 20-envsubst-on-templates.sh, and deploy/stack.sh runs it for `make stack`.
#  1. With a certificate: the HTTPS server plus a port-80 redirect; without: plain HTTP only
#     (so the first start works and certbot can answer the ACME challenge).
#  2. Flower's htpasswd from FLOWER_BASIC_AUTH ("user:password", several separated by commas).
#     No value: an empty file, so /flower/ stays locked.
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

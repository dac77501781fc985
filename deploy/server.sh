#!/usr/bin/env bash
# Runs on the server, sent over SSH by .github/workflows/deploy.yml (bash -s -- ARGS < this file).
#
#   deploy  DIR IMAGE TAG RUN_URL STARTED   pull the image, restart the stack, announce success
#   failure DIR TAG RUN_URL                 announce a failed deploy
#
# The announcement is `manage.py notify`: an outbox row that the stack's worker delivers to
# the ops Telegram chat (with retries, the sweeper as a safety net).
set -euo pipefail

notify() {  # notify STATUS TITLE TAG RUN_URL [DURATION]
    docker compose exec -T web python manage.py notify --status "$1" --title "$2" --commit "$3" \
        --url "$4" ${5:+--duration "$5"}
}

set_env() {  # keep the deployed version in .env, so a plain `docker compose up -d` keeps it too
    if grep -q "^$1=" .env; then
        sed -i "s|^$1=.*|$1=$2|" .env
    else
        printf '%s=%s\n' "$1" "$2" >> .env
    fi
}

deploy() {
    local dir=$1 image=$2 tag=$3 url=$4 started=$5
    cd "$dir"
    set_env APP_IMAGE "$image"
    set_env APP_TAG "$tag"
    docker compose pull --quiet
    # The one-shot migrate service runs first; web, worker and beat wait for it.
    docker compose up -d --remove-orphans
    for _ in $(seq 1 60); do
        [ "$(docker compose ps --format '{{.Health}}' web)" = healthy ] && break
        sleep 5
    done
    if [ "$(docker compose ps --format '{{.Health}}' web)" != healthy ]; then
        docker compose logs --tail 50 migrate web >&2
        echo "web is not healthy after 300 s" >&2
        return 1
    fi
    docker image prune --force --filter "until=168h" > /dev/null || true
    notify success "Deployed ${tag:0:7}" "$tag" "$url" "$(($(date +%s) - started))"
}

failure() {
    local dir=$1 tag=$2 url=$3
    cd "$dir"
    notify failure "Deploy of ${tag:0:7} failed" "$tag" "$url"
}

case "${1:-}" in
    deploy) shift; deploy "$@" ;;
    failure) shift; failure "$@" ;;
    *) echo "usage: $0 deploy DIR IMAGE TAG RUN_URL STARTED | failure DIR TAG RUN_URL" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The production-shaped stack without Docker (`make stack`, `make stack-stop`): the processes
# docker-compose.yml runs (gunicorn with deploy/gunicorn.conf.py, a Celery worker, beat,
# Flower, nginx with the project's nginx/ config over a self-signed certificate) against the
# local PostgreSQL and Redis. State, logs and pid files live in $STACK_DIR (.stack/).
#
#   deploy/stack.sh start     release step (collectstatic, migrate), then start and wait until ready
#   deploy/stack.sh stop      end exactly the processes `start` recorded in pid files
#   deploy/stack.sh status    which recorded processes are alive
#   deploy/stack.sh manage …  run manage.py with the stack's environment
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

STACK_DIR=${STACK_DIR:-$ROOT/.stack}
STACK_GUNICORN_PORT=${STACK_GUNICORN_PORT:-15300}
STACK_HTTP_PORT=${STACK_HTTP_PORT:-15380}
STACK_HTTPS_PORT=${STACK_HTTPS_PORT:-15343}
STACK_FLOWER_PORT=${STACK_FLOWER_PORT:-15355}
PY=${PY:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
RUN="$STACK_DIR/run"
LOGS="$STACK_DIR/logs"
ENV_FILE="$STACK_DIR/env"
# Processes in the order they start; stop goes in reverse.
SERVICES=(gunicorn worker beat flower nginx)

log() { printf 'stack: %s\n' "$*" >&2; }

# The stack's own database next to the one in DATABASE_URL (name + "_stack"), so it never
# touches the test databases; the broker from CELERY_BROKER_URL (else Redis db 14).
default_database_url() {
    local base=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/referrals}
    printf '%s_stack' "${base%%\?*}"
}

write_env() {
    mkdir -p "$STACK_DIR" "$RUN" "$LOGS" "$STACK_DIR/sent_messages"
    [ -s "$STACK_DIR/secret_key" ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(50))' > "$STACK_DIR/secret_key"
    [ -s "$STACK_DIR/flower_password" ] || "$PY" -c 'import secrets; print(secrets.token_urlsafe(18))' > "$STACK_DIR/flower_password"
    local origin="https://127.0.0.1:$STACK_HTTPS_PORT"
    umask 077
    cat > "$ENV_FILE" <<ENV
DEBUG=0
HTTPS=1
SECRET_KEY=$(cat "$STACK_DIR/secret_key")
ALLOWED_HOSTS=127.0.0.1,localhost
CSRF_TRUSTED_ORIGINS=$origin,https://localhost:$STACK_HTTPS_PORT
DATABASE_URL=${STACK_DATABASE_URL:-$(default_database_url)}
CELERY_BROKER_URL=${STACK_BROKER_URL:-${CELERY_BROKER_URL:-redis://127.0.0.1:6379/14}}
TRUSTED_PROXIES=127.0.0.1
OTP_FAKE_DELIVERY=0
FAKE_CONFIRM=0
OTP_DELIVERY_BACKENDS=file
SENT_MESSAGES_DIR=$STACK_DIR/sent_messages
FLOWER_BASIC_AUTH=admin:$(cat "$STACK_DIR/flower_password")
GUNICORN_BIND=127.0.0.1:$STACK_GUNICORN_PORT
GUNICORN_WORKERS=${STACK_GUNICORN_WORKERS:-2}
ENV
    umask 022
}

load_env() {
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
}

alive() {  # alive NAME: the recorded process still runs (and still leads its own group)
    local pid
    pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]
}

group_alive() {  # group_alive PGID: a process of the group still runs (zombies do not count)
    local p
    for p in $(pgrep -g "$1" 2>/dev/null); do
        case $(ps -o stat= -p "$p" 2>/dev/null) in
            Z* | "") ;;
            *) return 0 ;;
        esac
    done
    return 1
}

spawn() {  # spawn NAME CMD…: a new session (so stop can end its whole group), pid recorded
    local name=$1
    shift
    if alive "$name"; then
        log "$name already runs (pid $(cat "$RUN/$name.pid"))"
        return
    fi
    setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
    echo $! > "$RUN/$name.pid"
    log "$name started (pid $!, log $LOGS/$name.log)"
}

create_database() {
    "$PY" - <<'PY'
import os
import psycopg
from urllib.parse import urlparse

url = urlparse(os.environ["DATABASE_URL"])
name = url.path.lstrip("/")
admin = url._replace(path="/postgres").geturl()
with psycopg.connect(admin, autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"stack: created database {name}")
PY
}

certificate() {
    local dir="$STACK_DIR/certs"
    mkdir -p "$dir"
    [ -s "$dir/fullchain.pem" ] && return
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
    log "self-signed certificate in $dir"
}

render_nginx() {  # the values compose gives nginx, but local ports, paths and upstreams
    export NGINX_SERVER_NAME="127.0.0.1 localhost"
    # Loopback only: this is a test and demo stack, never reachable from the network.
    export NGINX_HTTP_LISTEN=127.0.0.1:$STACK_HTTP_PORT NGINX_HTTPS_LISTEN=127.0.0.1:$STACK_HTTPS_PORT
    export NGINX_HTTPS_PORT=$STACK_HTTPS_PORT
    export NGINX_UPSTREAM_WEB=127.0.0.1:$STACK_GUNICORN_PORT NGINX_UPSTREAM_FLOWER=127.0.0.1:$STACK_FLOWER_PORT
    export NGINX_STATIC_ROOT="$ROOT/staticfiles" NGINX_ACME_ROOT="$STACK_DIR/acme"
    export NGINX_SSL_CERT="$STACK_DIR/certs/fullchain.pem" NGINX_SSL_KEY="$STACK_DIR/certs/privkey.pem"
    export NGINX_AUTH_RATE=${NGINX_AUTH_RATE:-10r/s} NGINX_AUTH_BURST=${NGINX_AUTH_BURST:-20}
    export NGINX_LOG_DIR=$LOGS NGINX_PID_FILE=$RUN/nginx.master.pid
    # A root master runs its workers as nobody, who may not reach into the checkout (a clone in a
    # 0700 folder from mktemp -d): they read staticfiles/ and the htpasswd in STACK_DIR, so they
    # run as the checkout's owner. Loopback only; the image runs them as its own nginx user.
    if [ "$(id -u)" = 0 ]; then
        export NGINX_WORKER_USER
        NGINX_WORKER_USER=$(stat -c %U "$ROOT")
    fi
    mkdir -p "$STACK_DIR/acme"
    deploy/render-nginx.sh "$STACK_DIR/nginx" >&2
}

wait_ready() {
    local deadline=$((SECONDS + ${STACK_START_TIMEOUT:-90}))
    local url="https://127.0.0.1:$STACK_HTTPS_PORT/ready/"
    until curl -skf -o /dev/null "$url" && grep -q "ready\." "$LOGS/worker.log" \
        && curl -s -o /dev/null "http://127.0.0.1:$STACK_FLOWER_PORT/flower/healthcheck"; do
        for name in "${SERVICES[@]}"; do
            if ! alive "$name"; then
                log "$name exited; the end of its log:"
                tail -n 30 "$LOGS/$name.log" >&2 || true
                return 1
            fi
        done
        if [ $SECONDS -ge $deadline ]; then
            log "not ready within ${STACK_START_TIMEOUT:-90} s"
            return 1
        fi
        sleep 0.5
    done
}

start() {
    write_env
    load_env
    create_database
    # The Dockerfile's build step, then docker-compose.yml's one-shot `migrate` service.
    "$PY" manage.py collectstatic --noinput -v 0
    PATH="$BIN:$PATH" sh deploy/release.sh >&2
    certificate
    render_nginx
    "$NGINX" -t -q -e "$LOGS/nginx-error.log" -p "$STACK_DIR/nginx" -c "$STACK_DIR/nginx/nginx.conf"

    # Multiprocess metrics as in docker-compose.yml: a folder per kind of process, the web's
    # /metrics adds both up (project/metrics.py).
    spawn gunicorn env PROMETHEUS_MULTIPROC_DIR="$STACK_DIR/metrics/web" \
        METRICS_COLLECT_DIRS="$STACK_DIR/metrics/web,$STACK_DIR/metrics/worker" \
        "$BIN/gunicorn" --config deploy/gunicorn.conf.py project.wsgi:application
    spawn worker env PROMETHEUS_MULTIPROC_DIR="$STACK_DIR/metrics/worker" \
        "$BIN/celery" -A project worker -E --loglevel=INFO --concurrency=2 -n "stack-worker-$$@%h"
    spawn beat "$BIN/celery" -A project beat --loglevel=INFO --pidfile="$RUN/beat.celery.pid"
    spawn flower "$BIN/celery" -A project flower --address=127.0.0.1 --port="$STACK_FLOWER_PORT" --url_prefix=flower
    spawn nginx "$NGINX" -e "$LOGS/nginx-error.log" -p "$STACK_DIR/nginx" -c "$STACK_DIR/nginx/nginx.conf" -g "daemon off;"

    if ! wait_ready; then
        stop
        return 1
    fi
    log "ready: https://127.0.0.1:$STACK_HTTPS_PORT/ (self-signed), http://127.0.0.1:$STACK_HTTP_PORT/ redirects"
    log "flower: https://127.0.0.1:$STACK_HTTPS_PORT/flower/ as admin, password in $STACK_DIR/flower_password"
}

stop() {
    local i name pid pids=() names=()
    # nginx first (no new requests), then the rest; all in parallel. SIGTERM goes to each
    # leader, which shuts its own children down gracefully (gunicorn's and celery's workers).
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        name=${SERVICES[$i]}
        [ -f "$RUN/$name.pid" ] || continue
        if alive "$name"; then
            pid=$(cat "$RUN/$name.pid")
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$name")
        else
            rm -f "$RUN/$name.pid"
        fi
    done
    for _ in $(seq 1 100); do
        local left=0
        for pid in "${pids[@]}"; do
            # Done when nothing of its group is left (a leader may exit before its children).
            if group_alive "$pid"; then left=1; fi
        done
        [ $left = 0 ] && break
        sleep 0.2
    done
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        if group_alive "$pid"; then
            log "${names[$i]} (group $pid) still runs 20 s after SIGTERM: SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        log "${names[$i]} stopped (pid $pid)"
        rm -f "$RUN/${names[$i]}.pid"
    done
}

status() {
    local name rc=0
    for name in "${SERVICES[@]}"; do
        if alive "$name"; then
            echo "$name: running (pid $(cat "$RUN/$name.pid"))"
        else
            echo "$name: stopped"
            rc=3
        fi
    done
    return $rc
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    manage)
        shift
        [ -f "$ENV_FILE" ] || write_env
        load_env
        exec "$PY" manage.py "$@"
        ;;
    *)
        echo "usage: $0 start|stop|status|manage ARGS" >&2
        exit 2
        ;;
esac

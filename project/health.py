"""Endpoints for uptime monitors and the compose health check. No auth, no session."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@never_cache
def health(request):
    """The process lives. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"database: {exc.__class__.__name__}"
    return None


def _broker_ok() -> str | None:
    from project.celery import app

    if app.conf.task_always_eager:
        return None  # the embedded mode has no broker
    url = app.conf.broker_write_url or app.conf.broker_url
    try:
        if url.startswith(("redis://", "rediss://")):
            # One PING on a short-lived connection, one second at most.
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
            try:
                client.ping()
            finally:
                client.close()
        else:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=1)
    except Exception as exc:
        return f"broker: {exc.__class__.__name__}"
    return None


def ready_failures() -> list[str]:
    """What /ready/ finds failing (empty: ready). Also read by the /metrics scrape (app_ready)."""
    return [f for f in (_database_ok(), _broker_ok()) if f]


@never_cache
def ready(request):
    """200 when PostgreSQL and the broker answer, else 503 naming what failed."""
    failures = ready_failures()
    if failures:
        return JsonResponse({"status": "unavailable", "failing": failures}, status=503)
    return JsonResponse({"status": "ok"})

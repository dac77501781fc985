"""Celery tasks: thin doors into notifications.services.

Retries are counted on the outbox row (Message.attempts, bounded by OUTBOX_MAX_ATTEMPTS), not by
Celery, so a message re-published by the sweeper keeps its count; hence max_retries=None here.
"""

import time

from celery import shared_task
from celery.signals import task_prerun
from django.db import InterfaceError, OperationalError, connections

from .services import message_deliver, message_sweep


@task_prerun.connect
def _db_connection_checked(**kwargs):
    """The worker reuses its connection (CELERY_DB_REUSE_MAX). A task starts by dropping one
    that failed (a PostgreSQL restart) or is older than CONN_MAX_AGE, without the health-check
    query close_old_connections() would cost per task (a round trip per message, bench/): a
    connection that died unnoticed fails its first task, which retries on a fresh one."""
    for connection in connections.all(initialized_only=True):
        expired = connection.close_at is not None and time.monotonic() >= connection.close_at
        if connection.errors_occurred or expired:
            connection.close_if_unusable_or_obsolete()


@shared_task(
    bind=True,
    # The outbox row is the delivery's record (status, attempts, error); no result store.
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=60,
)
def message_deliver_task(self, message_id: int) -> str:
    """Deliver outbox row `message_id`. Idempotent: the row is claimed first.

    acks_late + reject_on_worker_lost: a worker killed mid-send leaves the task in Redis and
    another worker runs it; the row is then still `sending`, so the task waits for the claim's
    lease (a retry with a countdown) instead of dropping the message. A database that is
    down or restarting retries the task with backoff (autoretry_for).
    """
    outcome = message_deliver(message_id=message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(ignore_result=True)
def outbox_sweep_task() -> int:
    """The beat job (see `manage.py outbox_schedule`): re-publish forgotten outbox rows."""
    return message_sweep()

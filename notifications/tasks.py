"""Celery tasks: thin doors into notifications.services.

Retries are counted on the outbox row (Message.attempts, bounded by OUTBOX_MAX_ATTEMPTS), not by
Celery, so a message re-published by the sweeper keeps its count; hence max_retries=None here.
"""

import time

from celery import shared_task
from celery.signals import task_prerun, worker_init
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.db.backends.signals import connection_created

from .services import message_deliver, message_sweep


def _commit_without_waiting_for_disk(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


@worker_init.connect
def _worker_async_commit(**kwargs):
    """Worker connections do not wait for the WAL flush on commit (OUTBOX_ASYNC_COMMIT, opt-in).

    A worker commits three times per message: the claim and the task result always skip the
    flush (db.flush_skipped: losing them costs nothing but a repeat), the mark "sent" waits
    for it. With this on the mark skips it too: a PostgreSQL crash can then lose the last
    fraction of a second of "sent" marks, and those messages are sent once more, never lost.
    The rows that carry a message are written by the web process, durably. Prefork children
    inherit this.
    """
    if settings.OUTBOX_ASYNC_COMMIT:
        connection_created.connect(_commit_without_waiting_for_disk, weak=False)


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

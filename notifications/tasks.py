"""Celery tasks: thin doors into notifications.services.

Retries are counted on the outbox row (Message.attempts, bounded by OUTBOX_MAX_ATTEMPTS), not by
Celery, so a message re-published by the sweeper keeps its count; hence max_retries=None here.
"""

from celery import shared_task

from .services import message_deliver, message_sweep


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def message_deliver_task(self, message_id: int) -> str:
    """Deliver outbox row `message_id`. Idempotent: the row is claimed first.

    acks_late + reject_on_worker_lost: a worker killed mid-send leaves the task in Redis and
    another worker runs it; the row is then still `sending`, so the task waits for the claim's
    lease (a retry with a countdown) instead of dropping the message.
    """
    outcome = message_deliver(message_id=message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(ignore_result=True)
def outbox_sweep_task() -> int:
    """The beat job (see `manage.py outbox_schedule`): re-publish forgotten outbox rows."""
    return message_sweep()

import random

from celery import shared_task

from .backends import TransientError
from .services import message_deliver

# Retries of transient errors: exponential backoff with full jitter, capped.
MAX_RETRIES = 8
BACKOFF_BASE_S = 2
BACKOFF_CAP_S = 600


def backoff_seconds(retries: int, retry_after: float | None = None) -> float:
    delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**retries))
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def message_deliver_task(self, message_id: int) -> str:
    """Deliver outbox row `message_id`; idempotent (the row is claimed first)."""
    try:
        return message_deliver(message_id=message_id)
    except TransientError as exc:
        if self.request.retries >= self.max_retries:
            from .services import message_claim, message_mark_failed

            message = message_claim(message_id=message_id)
            if message is not None:
                message_mark_failed(message=message, error=f"gave up after {self.request.retries + 1} tries: {exc}")
            return "failed"
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries, exc.retry_after)) from exc

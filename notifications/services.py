import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .backends import PermanentError, TransientError, backend_get
from .models import Message

logger = logging.getLogger(__name__)

REDACTED = "[redacted after delivery]"


def message_enqueue(*, channel: str, recipient: str, body: str, sensitive: bool = False) -> Message:
    """Write the outbox row in the caller's transaction; publish its id after commit.

    If the broker is down the row stays pending and the sweeper publishes it later:
    an accepted message is never lost.
    """
    message = Message.objects.create(channel=channel, recipient=recipient, body=body, sensitive=sensitive)
    transaction.on_commit(lambda: message_publish(message_id=message.pk))
    return message


def message_publish(*, message_id: int, countdown: float | None = None) -> bool:
    """Hand the id to Celery. Never raises: a failed publish is retried by the sweeper."""
    from .tasks import message_deliver_task

    try:
        message_deliver_task.apply_async(args=[message_id], countdown=countdown)
    except Exception as exc:  # the broker is unreachable; Celery raises many kinds
        logger.warning("publish of message %s failed, the sweeper will retry: %s", message_id, exc)
        return False
    return True


def message_claim(*, message_id: int) -> Message | None:
    """Take the row for delivery with one conditional UPDATE, so two workers never both send.

    A row left in `sending` by a worker that died becomes claimable after the lease.
    """
    now = timezone.now()
    lease_over = now - timedelta(seconds=settings.OUTBOX_CLAIM_LEASE_S)
    claimable = Q(status=Message.Status.PENDING) | Q(status=Message.Status.SENDING, claimed_at__lt=lease_over)
    from django.db.models import F

    updated = Message.objects.filter(claimable, pk=message_id).update(
        status=Message.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
    )
    if not updated:
        return None
    return Message.objects.get(pk=message_id)


def _finish(message: Message, **fields) -> bool:
    """Record the outcome, only if the row is still ours (same claim)."""
    now = timezone.now()
    if message.sensitive:
        fields["body"] = REDACTED
    return bool(
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at).update(
            updated_at=now, **fields
        )
    )


def message_mark_sent(*, message: Message, provider_id: str) -> bool:
    return _finish(
        message, status=Message.Status.SENT, provider_id=provider_id[:255], sent_at=timezone.now(), last_error=""
    )


def message_mark_failed(*, message: Message, error: str) -> bool:
    return _finish(message, status=Message.Status.FAILED, last_error=error[:2000])


def message_release(*, message: Message, error: str) -> bool:
    """A transient failure: back to pending so the retry (or the sweeper) can claim it."""
    now = timezone.now()
    return bool(
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at).update(
            status=Message.Status.PENDING, last_error=error[:2000], updated_at=now
        )
    )


def message_deliver(*, message_id: int) -> str:
    """Deliver one outbox row. Returns what happened: sent, failed, retry or skipped.

    Raises TransientError (after releasing the row) so the task can retry with backoff.
    """
    message = message_claim(message_id=message_id)
    if message is None:
        return "skipped"
    try:
        send = backend_get(message.channel)
        provider_id = send(message)
    except TransientError as exc:
        message_release(message=message, error=str(exc))
        raise
    except PermanentError as exc:
        message_mark_failed(message=message, error=str(exc))
        logger.error("message %s failed permanently: %s", message.pk, exc)
        return "failed"
    message_mark_sent(message=message, provider_id=provider_id or "")
    return "sent"

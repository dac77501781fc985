"""The outbox: every outgoing message is a row first, then a Celery task delivers it.

PostgreSQL holds the truth (the row and its status); Redis only carries the row id. A row is
claimed with one conditional UPDATE, so a redelivered or duplicated task never sends twice.
"""

import html
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from project import metrics
from project.exceptions import ApplicationError

from .backends import PermanentError, TransientError, backend_get
from .models import Message
from .throttle import throttle_reserve

logger = logging.getLogger(__name__)

REDACTED = "[redacted after delivery]"
# The claim accepts a row this early: a retry's ETA and the row's available_at come from clocks
# read a moment apart.
CLAIM_SLACK = timedelta(seconds=1)


def _lease_over(now):
    """A row claimed before this time by a worker that never finished is claimable again (the
    claim's lease, OUTBOX_CLAIM_LEASE_S): used by the claim, its wait and the sweeper."""
    return now - timedelta(seconds=settings.OUTBOX_CLAIM_LEASE_S)


@dataclass(frozen=True)
class Outcome:
    """What one delivery try did: sent, failed, skipped (already done), retry or busy."""

    status: str
    retry_in: float | None = None  # seconds; set for retry and busy


def message_enqueue(*, channel: str, recipient: str, body: str, sensitive: bool = False) -> Message:
    """Write the outbox row in the caller's transaction; publish its id after commit.

    If the broker is down the row stays pending and the sweeper publishes it later:
    an accepted message is never lost, and the caller never waits for Redis.
    """
    (message,) = messages_enqueue([Message(channel=channel, recipient=recipient, body=body, sensitive=sensitive)])
    return message


def messages_enqueue(messages: list[Message]) -> list[Message]:
    """message_enqueue for unsaved Message rows: one INSERT for all, each published after commit."""
    messages = Message.objects.bulk_create(messages)
    for message in messages:
        transaction.on_commit(partial(message_publish, message_id=message.pk))
    return messages


# Set when a publish fails: until then the request path does not try the broker again, so a
# Redis outage costs one connect timeout per process, not one per signup. The sweeper
# publishes what was skipped (force=True: it runs where the broker just answered).
_broker_down_until = 0.0

# Named, not imported: notifications.tasks imports this module (tasks -> services).
DELIVER_TASK = "notifications.tasks.message_deliver_task"


def message_publish(*, message_id: int, force: bool = False) -> bool:
    """Hand the id to Celery. Never raises: a failed or skipped publish is left to the sweeper."""
    global _broker_down_until
    if not force and time.monotonic() < _broker_down_until:
        return False
    try:
        current_app.tasks[DELIVER_TASK].apply_async(args=[message_id])
    except Exception as exc:  # the broker is unreachable; Celery raises many kinds
        _broker_down_until = time.monotonic() + settings.OUTBOX_PUBLISH_BACKOFF_S
        logger.warning("publish of message %s failed, the sweeper will retry: %s", message_id, exc)
        return False
    _broker_down_until = 0.0
    return True


# The claim: one conditional UPDATE that takes the row and returns it (Message.objects.raw maps
# the RETURNING row onto the model). A row is claimable while pending and due, or while a claim
# whose lease ran out (a worker died mid-send) still holds it.
_CLAIM_SQL = f"""
UPDATE {Message._meta.db_table}
SET status = %(sending)s, claimed_at = %(now)s, updated_at = %(now)s, attempts = attempts + 1
WHERE id = %(id)s AND (
    (status = %(pending)s AND (available_at IS NULL OR available_at <= %(due)s))
    OR (status = %(sending)s AND claimed_at < %(lease_over)s)
)
RETURNING *{{skip_flush}}
"""
# set_config(..., true) is SET LOCAL: it lasts until this statement's own transaction ends, so it
# is safe behind a transaction pooler. The claim's commit then skips the WAL flush; the mark that
# follows every send waits for it and carries the claim with it.
_SKIP_FLUSH = ", set_config('synchronous_commit', 'off', true) AS claim_flush_skipped"


def message_claim(*, message_id: int) -> Message | None:
    """Take the row for delivery with one conditional UPDATE, so two workers never both send.

    A row left in `sending` by a worker that died becomes claimable after the lease; a row
    waiting for its retry (available_at) is not claimable before then.

    Outside a transaction (a worker) the claim's commit does not wait for the disk: a
    PostgreSQL crash can lose it, and the row is then pending again and sent (never lost); what
    is lost is one count of `attempts`. Inside one (a caller's atomic block) it would make the
    whole transaction skip the flush, so it is not done there.
    """
    now = timezone.now()
    params = {
        "id": message_id,
        "now": now,
        "due": now + CLAIM_SLACK,
        "lease_over": _lease_over(now),
        "pending": Message.Status.PENDING,
        "sending": Message.Status.SENDING,
    }
    sql = _CLAIM_SQL.format(skip_flush="" if connection.in_atomic_block else _SKIP_FLUSH)
    claimed = list(Message.objects.raw(sql, params))
    return claimed[0] if claimed else None


def message_wait_s(*, message_id: int) -> float | None:
    """For a row that could not be claimed: seconds until it can be, or None when it is done."""
    row = Message.objects.filter(pk=message_id).values("status", "available_at", "claimed_at").first()
    now = timezone.now()
    if row is None or row["status"] in (Message.Status.SENT, Message.Status.FAILED):
        return None
    if row["status"] == Message.Status.SENDING:
        return max(1.0, (row["claimed_at"] - _lease_over(now)).total_seconds() + 1)
    return max(1.0, ((row["available_at"] or now) - now).total_seconds())


def _still_ours(message: Message):
    """The row, only while it holds this claim: every outcome is written through it."""
    return Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, claimed_at=message.claimed_at)


def _finish(message: Message, **fields) -> bool:
    """Record the outcome, only if the row is still ours (same claim): a message marked sent is
    never sent again. A delivered login code's body is blanked."""
    fields["updated_at"] = timezone.now()
    if message.sensitive:
        fields["body"] = REDACTED
    return _still_ours(message).update(**fields) == 1


def message_mark_sent(*, message: Message, provider_id: str) -> bool:
    """Sent: recorded, and counted with its time from the outbox row (metrics)."""
    marked = _finish(
        message, status=Message.Status.SENT, provider_id=provider_id[:255], sent_at=timezone.now(), last_error=""
    )
    if marked:
        metrics.delivery_finished(message=message, outcome="sent")
    return marked


def message_mark_failed(*, message: Message, error: str) -> bool:
    """A permanent failure: recorded, and the ops chat hears about it (never about itself)."""
    marked = _finish(message, status=Message.Status.FAILED, last_error=error[:2000])
    if marked:
        metrics.delivery_finished(message=message, outcome="failed")
        logger.error("message %s (%s) failed permanently: %s", message.pk, message.channel, error)
        ops_alert(message=message, error=error)
    return marked


def message_release(*, message: Message, error: str, delay: float, count_attempt: bool = True) -> bool:
    """Back to pending, not claimable for `delay` seconds (the retry's backoff)."""
    now = timezone.now()
    fields = {"status": Message.Status.PENDING, "available_at": now + timedelta(seconds=delay), "updated_at": now}
    if error:
        fields["last_error"] = error[:2000]
    if not count_attempt:
        fields["attempts"] = F("attempts") - 1
    released = bool(_still_ours(message).update(**fields))
    if released and count_attempt:
        metrics.DELIVERY_RETRIES.labels(message.channel).inc()
    return released


def retry_delay_s(*, attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff with ("equal") jitter, capped; never sooner than the provider asked."""
    ceiling = min(settings.OUTBOX_RETRY_CAP_S, settings.OUTBOX_RETRY_BASE_S * 2 ** max(0, attempts - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay


def message_deliver(*, message_id: int) -> Outcome:
    """Deliver one outbox row: claim it, respect its backend's rate limit, send, record.

    Transient errors put the row back with a backoff (up to OUTBOX_MAX_ATTEMPTS tries);
    permanent errors fail it at once. After a provider said yes the row is marked sent, so a
    redelivered task finds nothing to do.
    """
    message = message_claim(message_id=message_id)
    if message is None:
        wait = message_wait_s(message_id=message_id)
        return Outcome("skipped") if wait is None else Outcome("busy", wait)
    if message.attempts > settings.OUTBOX_MAX_ATTEMPTS:  # e.g. a message that kills its worker
        message_mark_failed(message=message, error=f"gave up after {message.attempts - 1} attempts")
        return Outcome("failed")
    try:
        backend = backend_get(message.channel)
    except PermanentError as exc:
        message_mark_failed(message=message, error=str(exc))
        return Outcome("failed")

    limit = getattr(backend, "rate_limit", None)
    if limit is not None:
        key, per_second = limit(message)
        reserved, wait = throttle_reserve(key, per_second, max_wait=settings.OUTBOX_THROTTLE_MAX_WAIT_S)
        if not reserved:  # a queue is building up: come back later, this was not a try
            message_release(message=message, error="", delay=wait, count_attempt=False)
            return Outcome("retry", wait)
        time.sleep(wait)

    try:
        provider_id = backend.send(message)
    except PermanentError as exc:
        message_mark_failed(message=message, error=str(exc))
        return Outcome("failed")
    except Exception as exc:  # TransientError, or a bug: both get the bounded retries
        if not isinstance(exc, TransientError):
            logger.exception("backend %s crashed on message %s", message.channel, message.pk)
        error = f"{exc.__class__.__name__}: {exc}"
        if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            message_mark_failed(message=message, error=f"gave up after {message.attempts} attempts: {error}")
            return Outcome("failed")
        delay = retry_delay_s(attempts=message.attempts, retry_after=getattr(exc, "retry_after", None))
        message_release(message=message, error=error, delay=delay)
        return Outcome("retry", delay)
    message_mark_sent(message=message, provider_id=provider_id or "")
    return Outcome("sent")


def message_sweep(*, limit: int = 500) -> int:
    """Re-publish rows nobody is working on: pending past the grace period (the broker was down
    when they were accepted, or a retry was lost) and `sending` past the lease (a dead worker).

    Each swept pending row gets a fresh grace period, so a slow queue is not flooded with copies;
    copies are harmless anyway (the claim). Used by the beat job `outbox_sweep_task`.
    """
    now = timezone.now()
    grace_over = now - timedelta(seconds=settings.OUTBOX_SWEEP_GRACE_S)
    lease_over = _lease_over(now)
    stale = Q(status=Message.Status.PENDING) & (
        Q(available_at__isnull=True, created_at__lt=grace_over) | Q(available_at__lt=grace_over)
    ) | Q(status=Message.Status.SENDING, claimed_at__lt=lease_over)
    with transaction.atomic():
        ids = list(
            Message.objects.filter(stale)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        Message.objects.filter(pk__in=ids, status=Message.Status.PENDING).update(available_at=now)
    published = sum(message_publish(message_id=message_id, force=True) for message_id in ids)
    if ids:
        logger.info("outbox sweep: %s rows, %s published", len(ids), published)
    return published


def messages_requeue(*, message_ids) -> int:
    """Give failed messages a fresh start (the admin action). Sent ones are left alone."""
    ids = list(Message.objects.filter(pk__in=message_ids, status=Message.Status.FAILED).values_list("id", flat=True))
    Message.objects.filter(pk__in=ids, status=Message.Status.FAILED).update(
        status=Message.Status.PENDING, attempts=0, available_at=None, claimed_at=None, updated_at=timezone.now()
    )
    for message_id in ids:
        transaction.on_commit(lambda message_id=message_id: message_publish(message_id=message_id))
    return len(ids)


# --- Operations: the Telegram ops chat (TELEGRAM_CHAT_ID) ---

OPS_ICONS = {"success": "✅", "failure": "❌"}


def _duration_text(seconds: float) -> str:
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {seconds:02d}s"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"


def ops_notify(*, status: str, title: str, commit: str = "", url: str = "", duration: float | None = None) -> Message:
    """A CI-style message to the ops chat (the deploy workflow calls `manage.py notify`).

    Every value is HTML-escaped: titles and URLs come from CI and may hold anything.
    """
    if status not in OPS_ICONS:
        raise ApplicationError("Status must be success or failure.", field="status")
    if not title.strip():
        raise ApplicationError("A title is required.", field="title")
    if url and not url.startswith(("https://", "http://")):
        raise ApplicationError("The URL must start with http:// or https://.", field="url")
    if duration is not None and duration < 0:
        raise ApplicationError("The duration cannot be negative.", field="duration")
    if not settings.TELEGRAM_CHAT_ID:
        raise ApplicationError("TELEGRAM_CHAT_ID is not set.")
    esc = html.escape
    lines = [
        f"{OPS_ICONS[status]} <b>{esc(title.strip())}</b>",
        f"Status: {status}",
        f"Project: {esc(settings.PROJECT_NAME)}",
    ]
    if commit:
        lines.append(f"Commit: <code>{esc(commit.strip()[:12])}</code>")
    if url:
        lines.append(f'Link: <a href="{esc(url)}">{esc(url)}</a>')
    if duration is not None:
        lines.append(f"Duration: {_duration_text(duration)}")
    body = "\n".join(lines)
    with transaction.atomic():
        return message_enqueue(channel=Message.Channel.TELEGRAM, recipient=settings.TELEGRAM_CHAT_ID, body=body)


def _mask(recipient: str) -> str:
    if len(recipient) <= 6:
        return "***"
    return recipient[:4] + "***" + recipient[-2:]


def ops_alert(*, message: Message, error: str) -> Message | None:
    """Tell the ops chat that a message failed for good. Never about a Telegram message: the
    alert would go down the same broken pipe, and an alert about an alert could loop."""
    if message.channel == Message.Channel.TELEGRAM:
        return None
    if not (settings.TELEGRAM_ALERTS and settings.TELEGRAM_CHAT_ID):
        return None
    esc = html.escape
    body = "\n".join(
        [
            "🚨 <b>Delivery failed</b>",
            f"Project: {esc(settings.PROJECT_NAME)}",
            f"Message: #{message.pk}, {esc(message.channel)} to {esc(_mask(message.recipient))}",
            f"Attempts: {message.attempts}",
            f"Error: <code>{esc(error[:500])}</code>",
        ]
    )
    with transaction.atomic():
        return message_enqueue(channel=Message.Channel.TELEGRAM, recipient=settings.TELEGRAM_CHAT_ID, body=body)


def ops_guard_alert(*, title: str, lines: list[str]) -> Message | None:
    """A fraud-guard alert to the ops chat (accounts.guard: the SMS budget at 80 % and spent, a
    country or prefix paused by the conversion watch), queued in the caller's transaction and sent
    by the workers. Logged as well, so it is seen where alerts are off."""
    logger.warning("fraud guard: %s: %s", title, " ".join(lines))
    if not (settings.TELEGRAM_ALERTS and settings.TELEGRAM_CHAT_ID):
        return None
    esc = html.escape
    body = "\n".join(
        [f"⚠️ <b>{esc(title)}</b>", f"Project: {esc(settings.PROJECT_NAME)}", *(esc(line) for line in lines)]
    )
    with transaction.atomic():
        return message_enqueue(channel=Message.Channel.TELEGRAM, recipient=settings.TELEGRAM_CHAT_ID, body=body)

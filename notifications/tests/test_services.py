"""The outbox rules on a real database: claim, retry bounds, sweeper, alerts, re-queue."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services
from notifications.backends import PermanentError, TransientError
from notifications.models import Message
from notifications.services import (
    message_claim,
    message_deliver,
    message_sweep,
    messages_requeue,
    ops_notify,
    retry_delay_s,
)
from project.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """The ids handed to Celery (the broker itself is tested with a real worker elsewhere)."""
    ids = []
    monkeypatch.setattr(services, "message_publish", lambda *, message_id, **kwargs: ids.append(message_id) or True)
    return ids


@pytest.fixture
def backend(monkeypatch):
    """A scripted backend on the file channel: each call pops the next result (an exception is raised)."""

    class Scripted:
        results = []
        calls = 0

        @classmethod
        def send(cls, message):
            cls.calls += 1
            result = cls.results.pop(0)
            if isinstance(result, Exception):
                raise result
            return result

    monkeypatch.setattr(services, "backend_get", lambda channel: Scripted)
    return Scripted


def _row(**fields):
    return Message.objects.create(channel="sms", recipient="+79991234567", body="Your login code: 1234", **fields)


def test_a_row_is_claimed_once():
    message = _row()

    assert message_claim(message_id=message.pk) is not None
    assert message_claim(message_id=message.pk) is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivered_row_is_marked_sent_with_the_provider_id(backend):
    backend.results = ["prov-1"]
    message = _row()

    assert message_deliver(message_id=message.pk).status == "sent"

    message.refresh_from_db()
    assert (message.status, message.provider_id, message.attempts) == ("sent", "prov-1", 1)
    assert message.sent_at is not None


def test_a_sensitive_body_is_redacted_after_delivery(backend):
    backend.results = ["prov-1"]
    message = _row(sensitive=True)

    message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert "1234" not in message.body


def test_delivering_the_same_row_twice_sends_once(backend):
    backend.results = ["prov-1"]
    message = _row()

    outcomes = [message_deliver(message_id=message.pk).status for _ in range(2)]

    assert outcomes == ["sent", "skipped"]
    assert backend.calls == 1


def test_a_transient_error_puts_the_row_back_with_a_backoff(backend, settings):
    settings.OUTBOX_RETRY_BASE_S = 10
    backend.results = [TransientError("HTTP 500")]
    message = _row()

    outcome = message_deliver(message_id=message.pk)

    message.refresh_from_db()
    assert outcome.status == "retry" and 5 <= outcome.retry_in <= 10
    assert (message.status, message.last_error) == ("pending", "TransientError: HTTP 500")
    assert message.available_at > timezone.now()
    # Not claimable before its time, so a stray copy of the task waits too.
    assert message_deliver(message_id=message.pk).status == "busy"


def test_retry_after_is_honoured_over_a_shorter_backoff(backend, settings):
    settings.OUTBOX_RETRY_BASE_S = 0.1
    backend.results = [TransientError("429", retry_after=30)]

    outcome = message_deliver(message_id=_row().pk)

    assert outcome.retry_in == 30


def test_the_backoff_grows_exponentially_and_stays_under_the_cap(settings):
    settings.OUTBOX_RETRY_BASE_S, settings.OUTBOX_RETRY_CAP_S = 2, 60

    assert 1 <= retry_delay_s(attempts=1) <= 2
    assert 8 <= retry_delay_s(attempts=4) <= 16
    assert 30 <= retry_delay_s(attempts=20) <= 60


def test_transient_errors_give_up_after_the_bound(backend, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    backend.results = [TransientError("down"), TransientError("still down")]
    message = _row()

    assert message_deliver(message_id=message.pk).status == "retry"
    Message.objects.filter(pk=message.pk).update(available_at=None)
    assert message_deliver(message_id=message.pk).status == "failed"

    message.refresh_from_db()
    assert message.status == "failed"
    assert message.last_error.startswith("gave up after 2 attempts")


def test_a_permanent_error_fails_at_once_and_alerts_the_ops_chat(
    backend, settings, published, django_capture_on_commit_callbacks
):
    settings.TELEGRAM_ALERTS, settings.TELEGRAM_CHAT_ID = True, "-100555"
    backend.results = [PermanentError("sms.ru 207: cannot send to this number")]
    message = _row(sensitive=True)

    with django_capture_on_commit_callbacks(execute=True):
        assert message_deliver(message_id=message.pk).status == "failed"

    message.refresh_from_db()
    assert (message.status, message.attempts) == ("failed", 1)
    alert = Message.objects.get(channel="telegram")
    assert alert.recipient == "-100555"
    assert f"#{message.pk}, sms to +799***67" in alert.body
    assert "cannot send to this number" in alert.body
    assert "1234" not in alert.body  # the login code never reaches the ops chat
    assert published == [alert.pk]


def test_a_failed_telegram_message_raises_no_alert(backend, settings):
    settings.TELEGRAM_ALERTS, settings.TELEGRAM_CHAT_ID = True, "-100555"
    backend.results = [PermanentError("chat not found")]
    alert = Message.objects.create(channel="telegram", recipient="-100555", body="alert")

    message_deliver(message_id=alert.pk)

    assert Message.objects.count() == 1


def test_no_alert_without_the_ops_chat_configured(backend, settings):
    settings.TELEGRAM_ALERTS = False
    backend.results = [PermanentError("bad number")]

    message_deliver(message_id=_row().pk)

    assert not Message.objects.filter(channel="telegram").exists()


def test_a_row_left_sending_by_a_dead_worker_waits_for_its_lease_then_is_delivered(backend, settings):
    settings.OUTBOX_CLAIM_LEASE_S = 60
    backend.results = ["prov-1"]
    message = _row(status="sending", claimed_at=timezone.now() - timedelta(seconds=10), attempts=1)

    busy = message_deliver(message_id=message.pk)
    assert busy.status == "busy" and 45 <= busy.retry_in <= 52

    Message.objects.filter(pk=message.pk).update(claimed_at=timezone.now() - timedelta(seconds=61))
    assert message_deliver(message_id=message.pk).status == "sent"


def test_the_sweeper_republishes_forgotten_rows_only(settings, published):
    settings.OUTBOX_SWEEP_GRACE_S, settings.OUTBOX_CLAIM_LEASE_S = 30, 60
    old = timezone.now() - timedelta(minutes=5)
    forgotten = _row()
    stuck = _row(status="sending", claimed_at=old)
    fresh = _row()
    waiting_for_retry = _row(available_at=timezone.now() + timedelta(minutes=1))
    working = _row(status="sending", claimed_at=timezone.now())
    done = _row(status="sent")
    Message.objects.filter(pk__in=[forgotten.pk, stuck.pk, waiting_for_retry.pk, done.pk]).update(created_at=old)

    assert message_sweep() == 2

    assert sorted(published) == sorted([forgotten.pk, stuck.pk])
    assert {fresh.pk, working.pk, waiting_for_retry.pk, done.pk}.isdisjoint(published)
    # A swept row gets a fresh grace period: the next sweep leaves it to the queue.
    assert message_sweep() == 1 and published[-1] == stuck.pk


def test_requeue_gives_failed_messages_a_fresh_start_and_leaves_sent_ones(
    published, django_capture_on_commit_callbacks
):
    failed = _row(status="failed", attempts=8, last_error="gave up")
    sent = _row(status="sent")

    with django_capture_on_commit_callbacks(execute=True):
        assert messages_requeue(message_ids=[failed.pk, sent.pk]) == 1

    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert published == [failed.pk]


def test_ops_notify_escapes_what_ci_sends(settings, published):
    settings.TELEGRAM_CHAT_ID, settings.PROJECT_NAME = "-100555", "referrals"

    message = ops_notify(
        status="failure",
        title="Fix <script> & co",
        commit="0123456789abcdef",
        url='https://ci/x?a=1&b="2"',
        duration=3725,
    )

    assert message.body == (
        "❌ <b>Fix &lt;script&gt; &amp; co</b>\n"
        "Status: failure\n"
        "Project: referrals\n"
        "Commit: <code>0123456789ab</code>\n"
        'Link: <a href="https://ci/x?a=1&amp;b=&quot;2&quot;">https://ci/x?a=1&amp;b=&quot;2&quot;</a>\n'
        "Duration: 1h 02m 05s"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"status": "meh"}, "status"), ({"url": "javascript:alert(1)"}, "url"), ({"duration": -1}, "duration")],
)
def test_ops_notify_rejects_bad_input(settings, fields, field):
    settings.TELEGRAM_CHAT_ID = "-100555"

    with pytest.raises(ApplicationError) as caught:
        ops_notify(**{"status": "success", "title": "Deploy", **fields})
    assert caught.value.field == field


class _Broker:
    """The publish seam (the delivery task's apply_async, Celery's public call), raising as
    kombu does when Redis refuses the connection. tests/reliability/test_faults.py stops a real
    Redis under the running app."""

    def __init__(self, up):
        self.up = up
        self.calls = 0

    def send(self, args=None, **options):
        self.calls += 1
        if not self.up:
            raise ConnectionRefusedError("redis is down")


@pytest.fixture
def broker(monkeypatch):
    from notifications.tasks import message_deliver_task

    fake = _Broker(up=False)
    monkeypatch.setattr(message_deliver_task, "apply_async", fake.send)
    monkeypatch.setattr(services, "_broker_down_until", 0.0)
    return fake


def test_after_a_failed_publish_the_request_path_skips_the_broker_for_a_while(broker, settings):
    settings.OUTBOX_PUBLISH_BACKOFF_S = 60
    assert services.message_publish(message_id=1) is False
    assert services.message_publish(message_id=2) is False
    assert services.message_publish(message_id=3) is False
    assert broker.calls == 1  # one connect attempt, not one per signup


def test_the_sweeper_publishes_even_while_the_request_path_backs_off(broker, settings):
    settings.OUTBOX_PUBLISH_BACKOFF_S = 60
    services.message_publish(message_id=1)
    broker.up = True
    assert services.message_publish(message_id=1, force=True) is True
    assert services.message_publish(message_id=2) is True  # a success closes the back-off
    assert broker.calls == 3


def test_the_back_off_ends_by_itself(broker, settings):
    settings.OUTBOX_PUBLISH_BACKOFF_S = 0
    services.message_publish(message_id=1)
    broker.up = True
    assert services.message_publish(message_id=2) is True


def test_a_workers_claim_skips_the_wal_flush_for_its_own_transaction_only(transactional_db):
    """The claim outside a transaction: SET LOCAL for its statement, so the session (and, behind
    a pooler, the next client of the server connection) keeps synchronous_commit on."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    message = Message.objects.create(channel="file", recipient="+79991234567", body="x")
    with CaptureQueriesContext(connection) as queries:
        assert message_claim(message_id=message.pk) is not None
    assert "set_config('synchronous_commit', 'off', true)" in queries.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_a_claim_inside_a_transaction_leaves_its_commit_durable(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    message = Message.objects.create(channel="file", recipient="+79991234567", body="x")
    with CaptureQueriesContext(connection) as queries:
        assert message_claim(message_id=message.pk) is not None
    assert "set_config" not in queries.captured_queries[-1]["sql"]

"""End to end: a real Celery worker on Redis delivers outbox rows to local stand-ins for
SMS.ru and the Telegram Bot API (HTTP servers started by the test on 127.0.0.1)."""

import pytest
from django.core.management import call_command

from notifications.models import Message
from notifications.services import message_enqueue
from notifications.tasks import message_deliver_task
from tests.utils import task_outcomes, wait_for

from .fakes import Reply

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

CHAT = "-100555"
SMS_OK = {
    "status": "OK",
    "status_code": 100,
    "sms": {"79991234567": {"status": "OK", "status_code": 100, "sms_id": "000000-1"}},
}
TG_OK = {"ok": True, "result": {"message_id": 77}}


@pytest.fixture
def providers(fake_provider, settings):
    """Start the stand-ins with their scripts, then a worker pointed at them."""

    def start(worker, *, sms=None, telegram=None):
        sms_server = fake_provider(*(sms or [Reply(body=SMS_OK)]))
        tg_server = fake_provider(*(telegram or [Reply(body=TG_OK)]))
        settings.TELEGRAM_CHAT_ID, settings.TELEGRAM_ALERTS = CHAT, True
        start.worker_process = worker(
            "worker",
            env={
                "SMS_PROVIDER": "smsru",
                "SMS_API_URL": sms_server.url,
                "SMS_API_KEY": "api-id-123",
                "TELEGRAM_API_URL": tg_server.url,
                "TELEGRAM_BOT_TOKEN": "123:abc",
                "TELEGRAM_CHAT_ID": CHAT,
                "TELEGRAM_ALERTS": "1",
                "OUTBOX_RETRY_BASE_S": "0.2",
            },
        )
        return sms_server, tg_server

    return start


@pytest.fixture
def worker(celery_start):
    from project.celery import app

    app.control.purge()
    return celery_start


def _status(message):
    message.refresh_from_db()
    return message.status


def test_an_sms_and_a_telegram_message_are_delivered_with_the_exact_requests(providers, worker):
    sms_server, tg_server = providers(worker)

    sms = message_enqueue(channel="sms", recipient="+79991234567", body="Your login code: 1234", sensitive=True)
    tg = message_enqueue(channel="telegram", recipient=CHAT, body="<b>Hello</b> &amp; welcome")

    wait_for(lambda: _status(sms) == "sent" and _status(tg) == "sent", timeout=20)
    (sms_request,) = sms_server.requests
    assert sms_request.path == "/sms/send"
    assert sms_request.form == {
        "api_id": "api-id-123",
        "to": "79991234567",
        "msg": "Your login code: 1234",
        "json": "1",
    }
    (tg_request,) = tg_server.requests
    assert tg_request.path == "/bot123:abc/sendMessage"
    assert tg_request.json == {
        "chat_id": CHAT,
        "text": "<b>Hello</b> &amp; welcome",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
    assert (sms.provider_id, tg.provider_id) == ("000000-1", "77")
    assert sms.body == "[redacted after delivery]"


def test_a_500_then_a_200_delivers_once_after_a_retry(providers, worker):
    sms_server, _ = providers(worker, sms=(Reply(status=500, body=b"oops"), Reply(body=SMS_OK)))

    message = message_enqueue(channel="sms", recipient="+79991234567", body="hello")

    wait_for(lambda: _status(message) == "sent", timeout=20)
    assert len(sms_server.requests) == 2
    assert (message.attempts, message.provider_id, message.last_error) == (2, "000000-1", "")


def test_a_429_with_retry_after_waits_that_long(providers, worker):
    sms_server, _ = providers(worker, sms=(Reply(status=429, headers={"Retry-After": "2"}), Reply(body=SMS_OK)))

    message = message_enqueue(channel="sms", recipient="+79991234567", body="hello")

    wait_for(lambda: _status(message) == "sent", timeout=20)
    first, second = sms_server.requests
    assert second.at - first.at >= 2.0
    assert message.attempts == 2


def test_a_permanent_error_fails_at_once_and_alerts_the_ops_chat(providers, worker):
    refused = {
        "status": "OK",
        "status_code": 100,
        "sms": {"79991234567": {"status": "ERROR", "status_code": 207, "status_text": "cannot send to this number"}},
    }
    sms_server, tg_server = providers(worker, sms=(Reply(body=refused),))

    message = message_enqueue(channel="sms", recipient="+79991234567", body="Your login code: 1234", sensitive=True)

    wait_for(lambda: len(tg_server.requests) == 1, timeout=20)
    assert (_status(message), message.attempts, len(sms_server.requests)) == ("failed", 1, 1)
    assert "207" in message.last_error
    alert = tg_server.requests[0].json
    assert alert["chat_id"] == CHAT
    assert alert["text"].startswith("🚨 <b>Delivery failed</b>")
    assert f"Message: #{message.pk}, sms to +799***67" in alert["text"]
    assert "1234" not in alert["text"]
    assert Message.objects.get(channel="telegram").status == "sent"


def test_the_same_task_run_twice_sends_once(providers, worker):
    sms_server, _ = providers(worker)
    message = Message.objects.create(channel="sms", recipient="+79991234567", body="hello")  # not published yet
    log_path = providers.worker_process.log_path

    first = message_deliver_task.delay(message.pk)
    second = message_deliver_task.delay(message.pk)

    outcomes = wait_for(lambda: task_outcomes(log_path, [first.id, second.id]), timeout=20)
    assert sorted(outcomes) == ["sent", "skipped"]
    assert len(sms_server.requests) == 1
    assert _status(message) == "sent"


def test_notify_sends_the_expected_telegram_text(providers, worker, settings):
    settings.PROJECT_NAME = "referral-service"
    _, tg_server = providers(worker)

    call_command(
        "notify",
        "--status=success",
        "--title=Deploy to production",
        "--commit=4f2a9c1e0b7d6a5f",
        "--url=https://github.com/acme/referrals/actions/runs/42",
        "--duration=83",
    )

    wait_for(lambda: tg_server.requests, timeout=20)
    assert tg_server.requests[0].json["text"] == (
        "✅ <b>Deploy to production</b>\n"
        "Status: success\n"
        "Project: referral-service\n"
        "Commit: <code>4f2a9c1e0b7d</code>\n"
        'Link: <a href="https://github.com/acme/referrals/actions/runs/42">'
        "https://github.com/acme/referrals/actions/runs/42</a>\n"
        "Duration: 1m 23s"
    )

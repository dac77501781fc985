"""The fraud guard's ops alerts end to end: signups queue them in the outbox, a real Celery worker
delivers them to a local stand-in for the Telegram Bot API (and the codes to an SMS.ru stand-in);
the conversion watch runs as the beat job's task in that worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import GuardBlock, PhoneCode
from accounts.tasks import guard_watch_task
from notifications.tests.fakes import FakeProvider, Reply
from tests.utils import task_outcomes, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

CHAT = "-100555"
TG_OK = {"ok": True, "result": {"message_id": 77}}
SMS_OK = {"status": "OK", "status_code": 100, "sms": {}}


@pytest.fixture
def stand_ins(settings, celery_start):
    """The SMS and Telegram stand-ins, and a worker pointed at them."""
    from project.celery import app

    sms, telegram = FakeProvider([Reply(body=SMS_OK)]), FakeProvider([Reply(body=TG_OK)])
    settings.TELEGRAM_ALERTS, settings.TELEGRAM_CHAT_ID = True, CHAT
    app.control.purge()
    worker = celery_start(
        "worker",
        env={
            "SMS_PROVIDER": "smsru",
            "SMS_API_URL": sms.url,
            "SMS_API_KEY": "api-id-123",
            "TELEGRAM_API_URL": telegram.url,
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "TELEGRAM_CHAT_ID": CHAT,
            "TELEGRAM_ALERTS": "1",
        },
    )
    yield sms, telegram, worker
    sms.stop()
    telegram.stop()


def test_the_budget_alerts_reach_the_ops_chat_once_each_through_the_worker(api, settings, stand_ins):
    sms, telegram, _ = stand_ins
    settings.OTP_DELIVERY_BACKENDS = ["sms"]
    settings.OTP_SMS_BUDGET_PER_HOUR, settings.OTP_SMS_BUDGET_PER_DAY = 5, 1000

    statuses = [
        api.post("/api/v1/auth/signup/", {"phone": f"+7999{n:03d}0000"}, format="json", REMOTE_ADDR=f"10.4.0.{n}")
        for n in range(100, 107)
    ]

    assert [r.status_code for r in statuses] == [200] * 5 + [503] * 2
    wait_for(lambda: len(sms.requests) == 5 and len(telegram.requests) == 2, timeout=30)
    texts = sorted(request.json["text"] for request in telegram.requests)
    assert "SMS budget at 80 %: hourly" in texts[0] and "4 of 5 codes by SMS" in texts[0]
    assert "SMS budget spent: hourly" in texts[1] and "New codes are refused until" in texts[1]
    assert {request.json["chat_id"] for request in telegram.requests} == {CHAT}


def test_the_conversion_watch_task_blocks_a_pumped_prefix_and_alerts_once(api, stand_ins):
    _, telegram, worker = stand_ins
    made = timezone.now() - timedelta(minutes=10)
    for n in range(25):
        code = PhoneCode.objects.create(
            phone=f"+7999555{n:04d}",
            code_hash="x" * 64,
            ip_key=f"10.5.0.{n}",
            expires_at=made + timedelta(minutes=5),
            country="RU",
            prefix="+7999555",
        )
        PhoneCode.objects.filter(pk=code.pk).update(created_at=made)

    # Twice: the second run finds the blocks running and neither renews them nor alerts again.
    runs = [guard_watch_task.delay().id, guard_watch_task.delay().id]

    assert wait_for(lambda: task_outcomes(worker.log_path, runs), timeout=30) == ["2", "0"]
    assert set(GuardBlock.objects.values_list("scope", "key")) == {("prefix", "+7999555"), ("country", "RU")}
    wait_for(lambda: telegram.requests, timeout=30)
    (alert,) = telegram.requests
    assert "Codes paused: rarely entered" in alert.json["text"]
    assert "prefix +7999555: 0 of 25 used" in alert.json["text"] and "country RU: 0 of 25 used" in alert.json["text"]
    refused = api.post("/api/v1/auth/signup/", {"phone": "+79995559999"}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 3500

"""The fraud guard's caps under parallel requests to a real gunicorn (2 workers x 4 threads):
the counter rows are counted by one conditional upsert, so no burst passes a cap (issue 20)."""

from collections import Counter

import httpx
import pytest

from accounts.models import CodeRefusal, PhoneCode
from notifications.models import Message

from .parallel import run_parallel

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ENV = {
    "TRUSTED_PROXIES": "127.0.0.1",  # each request names its own client address
    "OTP_FAKE_DELIVERY": "0",
    "SMS_API_KEY": "not-used",  # nothing is delivered: no worker runs
    "TELEGRAM_ALERTS": "1",
    "TELEGRAM_BOT_TOKEN": "1:x",
    "TELEGRAM_CHAT_ID": "-100555",
}


def _signup(url: str, phone: str, n: int) -> int:
    headers = {"X-Forwarded-For": f"10.3.{n // 256}.{n % 256}"}
    return httpx.post(f"{url}/api/v1/auth/signup/", json={"phone": phone}, headers=headers, timeout=60).status_code


def test_thirty_parallel_signups_to_one_prefix_from_thirty_addresses_get_exactly_its_ten_codes(app_server):
    web = app_server(env={**ENV, "OTP_SENDS_PER_PREFIX_PER_HOUR": "10"})

    results = run_parallel([lambda n=n: _signup(web.url, f"+7999123{n:04d}", n) for n in range(30)])

    assert Counter(results) == {200: 10, 429: 20}
    assert PhoneCode.objects.filter(prefix="+7999123").count() == 10
    assert CodeRefusal.objects.filter(reason="prefix_velocity").count() == 20


def test_twenty_parallel_sms_signups_spend_exactly_the_budget_and_alert_twice(app_server):
    env = {**ENV, "OTP_DELIVERY_BACKENDS": "sms", "OTP_SMS_BUDGET_PER_HOUR": "5", "OTP_SMS_BUDGET_PER_DAY": "100"}
    web = app_server(env=env)

    results = run_parallel([lambda n=n: _signup(web.url, f"+7999{100 + n:03d}0000", n) for n in range(20)])

    assert Counter(results) == {200: 5, 503: 15}
    assert Message.objects.filter(channel="sms").count() == 5
    bodies = list(Message.objects.filter(channel="telegram").values_list("body", flat=True))
    assert len(bodies) == 2
    assert any("SMS budget at 80 %" in body for body in bodies) and any("SMS budget spent" in body for body in bodies)

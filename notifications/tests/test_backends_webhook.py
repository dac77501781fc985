"""The webhook backend against a local receiver: the raw body, the Stripe-style signature, and
every answer but a 2xx retried."""

import hashlib
import hmac
import time

import pytest

from notifications.backends import PermanentError, TransientError, webhook
from notifications.models import Message
from notifications.services import message_deliver

from .fakes import Reply

SECRET = "whsec-unit-test"
BODY = '{"id":"evt_abc","type":"referral.approved","created":1700000000,"data":{"referral":{"id":7}}}'


@pytest.fixture
def hook(settings, fake_provider):
    def start(*replies):
        server = fake_provider(*replies)
        settings.REFERRAL_WEBHOOK_SECRET = SECRET
        return server

    return start


def _message(url):
    return Message(pk=1, channel="webhook", recipient=url, body=BODY)


def test_it_posts_the_body_as_it_is_with_a_signature_over_timestamp_and_body(hook):
    server = hook(Reply(status=200, body=b"ok"))
    before = int(time.time())
    webhook.send(_message(server.url + "/in"))
    (request,) = server.requests
    assert request.method == "POST" and request.path == "/in"
    assert request.body == BODY.encode()
    assert request.headers["Content-Type"] == "application/json"
    t, v1 = (part.split("=", 1)[1] for part in request.headers["X-Referral-Signature"].split(","))
    assert before <= int(t) <= int(time.time())
    assert v1 == hmac.new(SECRET.encode(), f"{t}.{BODY}".encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_is_a_delivery(hook, status):
    server = hook(Reply(status=status, body=b""))
    assert webhook.send(_message(server.url)) == f"HTTP {status}"


@pytest.mark.parametrize("status", [301, 400, 401, 404, 410, 429, 500, 503])
def test_any_other_answer_is_retried(hook, status):
    server = hook(Reply(status=status, body=b"no"))
    with pytest.raises(TransientError, match=f"HTTP {status}"):
        webhook.send(_message(server.url))


def test_retry_after_is_honoured(hook):
    server = hook(Reply(status=503, headers={"Retry-After": "7"}))
    with pytest.raises(TransientError) as caught:
        webhook.send(_message(server.url))
    assert caught.value.retry_after == 7.0


def test_no_answer_is_retried(settings):
    settings.REFERRAL_WEBHOOK_SECRET = SECRET
    with pytest.raises(TransientError):
        webhook.send(_message("http://127.0.0.1:9/closed"))


def test_without_a_secret_it_fails_for_good(settings):
    settings.REFERRAL_WEBHOOK_SECRET = ""
    with pytest.raises(PermanentError):
        webhook.send(_message("http://127.0.0.1:9/"))


@pytest.mark.django_db
def test_an_outbox_row_of_the_webhook_channel_goes_back_to_pending_after_a_500(hook, settings):
    settings.TELEGRAM_ALERTS = False
    server = hook(Reply(status=500, body=b"down"), Reply(status=200))
    row = Message.objects.create(channel="webhook", recipient=server.url, body=BODY)
    assert message_deliver(message_id=row.pk).status == "retry"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.body) == ("pending", 1, BODY)
    assert "HTTP 500" in row.last_error

"""Referral webhooks: the events are outbox rows of the `webhook` channel, written with the
decision; a real worker POSTs them, signed, to a local receiver and retries until a 2xx."""

import importlib.util
import json
from pathlib import Path

import pytest
from django.utils import timezone

from notifications.models import Message
from notifications.tests.fakes import FakeProvider, Reply
from referrals.models import Referral
from referrals.services import inviter_set, referral_decide
from tests.factories import UserFactory, phone_far
from tests.utils import wait_for

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-test-0123456789"


def _receiver():
    """docs/webhook_receiver.py, the receiver the README shows."""
    spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "docs" / "webhook_receiver.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


webhook_verify = _receiver().webhook_verify


def _users(n):
    return [UserFactory(phone=phone_far()) for _ in range(n)]


def _events():
    return [json.loads(m.body) for m in Message.objects.filter(channel="webhook").order_by("id")]


@pytest.fixture
def webhooks_on(settings):
    settings.REFERRAL_WEBHOOK_URL = "http://127.0.0.1:9/hooks/referrals"
    settings.REFERRAL_WEBHOOK_SECRET = SECRET


# --- the events (outbox rows) ---


@pytest.mark.django_db
def test_no_event_is_written_without_a_webhook_url(settings):
    settings.REFERRAL_WEBHOOK_URL = ""
    inviter, invitee = _users(2)
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    assert not Message.objects.filter(channel="webhook").exists()


@pytest.mark.django_db
def test_an_approved_referral_sends_referral_approved_with_the_referral(webhooks_on, settings):
    inviter, invitee = _users(2)
    before = int(timezone.now().timestamp())
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    (row,) = Message.objects.filter(channel="webhook")
    assert row.recipient == settings.REFERRAL_WEBHOOK_URL
    event = json.loads(row.body)
    assert list(event) == ["id", "type", "created", "data"]
    assert event["id"].startswith("evt_") and len(event["id"]) > 20
    assert event["type"] == "referral.approved"
    assert before <= event["created"] <= int(timezone.now().timestamp())
    referral = Referral.objects.get(invitee=invitee)
    assert event["data"] == {
        "referral": {
            "id": invitee.pk,
            "inviter": inviter.phone,
            "inviter_id": inviter.pk,
            "invitee": invitee.phone,
            "invitee_id": invitee.pk,
            "created_at": referral.created_at.isoformat().replace("+00:00", "Z"),
            "status": "approved",
            "signals": [],
            "decided_by": None,
            "decided_at": referral.decided_at.isoformat().replace("+00:00", "Z"),
        }
    }


@pytest.mark.django_db
def test_a_flagged_referral_then_its_decision_send_two_events(webhooks_on, settings):
    settings.REFERRAL_MAX_PER_HOUR = 0
    inviter, invitee, other_invitee = _users(3)
    reviewer = UserFactory(is_staff=True, is_superuser=True)
    inviter_set(user_id=invitee.pk, code=inviter.ref_code)
    inviter_set(user_id=other_invitee.pk, code=inviter.ref_code)
    referral_decide(referral_id=invitee.pk, status="approved", staff=reviewer)
    referral_decide(referral_id=other_invitee.pk, status="rejected", staff=reviewer)
    events = _events()
    assert [e["type"] for e in events] == [
        "referral.flagged",
        "referral.flagged",
        "referral.approved",
        "referral.rejected",
    ]
    assert events[0]["data"]["referral"]["signals"] == ["inviter_velocity"]
    assert events[2]["data"]["referral"]["decided_by"] == reviewer.phone
    assert len({e["id"] for e in events}) == 4


@pytest.mark.django_db
def test_the_event_is_written_in_the_inviter_transaction(webhooks_on):
    (invitee,) = _users(1)
    from project.exceptions import ApplicationError

    with pytest.raises(ApplicationError):
        inviter_set(user_id=invitee.pk, code=invitee.ref_code)  # refused: own code
    assert not Message.objects.filter(channel="webhook").exists()


# --- the README's receiver ---


def test_the_readme_shows_the_tested_receiver():
    source = (ROOT / "docs" / "webhook_receiver.py").read_text()
    function = source[source.index("def webhook_verify") :]
    assert function in (ROOT / "README.md").read_text()


def test_the_receiver_refuses_a_changed_body_a_wrong_secret_and_an_old_timestamp():
    import hashlib
    import hmac
    import time

    body = b'{"id": "evt_1"}'
    t = int(time.time())
    header = f"t={t},v1={hmac.new(SECRET.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"
    assert webhook_verify(SECRET, header, body) == {"id": "evt_1"}
    for args, kwargs in (
        ((SECRET, header, body + b" "), {}),
        (("another-secret", header, body), {}),
        ((SECRET, header, body), {"now": t + 301}),
        ((SECRET, "v1=abc", body), {}),
    ):
        with pytest.raises(ValueError):
            webhook_verify(*args, **kwargs)


# --- real deliveries through a worker ---


@pytest.fixture
def receiver():
    servers = []

    def start(*replies):
        server = FakeProvider(replies)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def webhook_worker(celery_start, settings):
    from project.celery import app

    app.control.purge()

    def start(server, **env):
        settings.REFERRAL_WEBHOOK_URL = f"{server.url}/hooks/referrals"
        settings.REFERRAL_WEBHOOK_SECRET = SECRET
        return celery_start(
            "worker",
            env={"REFERRAL_WEBHOOK_SECRET": SECRET, "OUTBOX_RETRY_BASE_S": "0.2", **env},
        )

    return start


def _webhook_row():
    return Message.objects.filter(channel="webhook").first()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_a_500_is_retried_and_the_retry_carries_the_same_event_signed_again(receiver, webhook_worker):
    server = receiver(Reply(status=500, body=b"down"), Reply(status=204, body=b""))
    webhook_worker(server)
    inviter, invitee = _users(2)

    inviter_set(user_id=invitee.pk, code=inviter.ref_code)

    wait_for(lambda: _webhook_row() is not None and _webhook_row().status == "sent", timeout=30)
    row = _webhook_row()
    assert row.attempts == 2 and row.last_error == ""
    first, second = server.requests
    assert first.path == second.path == "/hooks/referrals"
    assert first.headers["Content-Type"] == "application/json"
    assert first.body == second.body == row.body.encode()  # the raw body, byte for byte
    events = [webhook_verify(SECRET, r.headers["X-Referral-Signature"], r.body) for r in (first, second)]
    assert events[0]["id"] == events[1]["id"]
    assert events[0]["type"] == "referral.approved"
    assert events[0]["data"]["referral"]["invitee"] == invitee.phone


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_a_receiver_that_never_answers_2xx_fails_the_row_after_the_max_attempts(receiver, webhook_worker, client):
    server = receiver(Reply(status=400, body={"error": "nope"}))  # any non-2xx is retried
    webhook_worker(server, OUTBOX_MAX_ATTEMPTS="3")
    inviter, invitee = _users(2)

    inviter_set(user_id=invitee.pk, code=inviter.ref_code)

    wait_for(lambda: _webhook_row() is not None and _webhook_row().status == "failed", timeout=30)
    row = _webhook_row()
    assert row.attempts == 3 and len(server.requests) == 3
    assert "HTTP 400" in row.last_error
    assert len({r.json["id"] for r in server.requests}) == 1
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get("/admin/notifications/message/", {"channel__exact": "webhook"})
    assert page.status_code == 200
    assert "HTTP 400" in page.content.decode()

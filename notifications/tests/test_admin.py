"""The Message admin: lists, filters, searches, and re-queues failed messages."""

import pytest
from django.urls import reverse

from notifications import services
from notifications.models import Message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def rows():
    return {
        "sent_sms": Message.objects.create(channel="sms", recipient="+79990000001", body="a", status="sent"),
        "failed_sms": Message.objects.create(channel="sms", recipient="+79990000002", body="b", status="failed"),
        "failed_tg": Message.objects.create(channel="telegram", recipient="-100555", body="c", status="failed"),
    }


def _listed(response):
    return {m.pk for m in response.context["cl"].result_list}


def test_it_filters_by_status_and_channel(admin_client, rows):
    url = reverse("admin:notifications_message_changelist")

    assert _listed(admin_client.get(url, {"status": "failed"})) == {rows["failed_sms"].pk, rows["failed_tg"].pk}
    assert _listed(admin_client.get(url, {"status": "failed", "channel": "sms"})) == {rows["failed_sms"].pk}


def test_it_searches_by_recipient(admin_client, rows):
    response = admin_client.get(reverse("admin:notifications_message_changelist"), {"q": "0000002"})

    assert _listed(response) == {rows["failed_sms"].pk}


def test_the_action_requeues_the_failed_messages_selected(
    admin_client, rows, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(services, "message_publish", lambda *, message_id: published.append(message_id))
    selected = [rows["sent_sms"].pk, rows["failed_sms"].pk]

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:notifications_message_changelist"),
            {"action": "requeue_failed", "_selected_action": selected},
            follow=True,
        )

    assert "1 failed message(s) re-queued." in response.content.decode()
    assert published == [rows["failed_sms"].pk]
    assert Message.objects.get(pk=rows["failed_sms"].pk).status == "pending"
    assert Message.objects.get(pk=rows["sent_sms"].pk).status == "sent"

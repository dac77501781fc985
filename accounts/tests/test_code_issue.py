"""accounts_code_issue (migration 0003) against services._code_issue, the same rules in Python.

test_otp runs every login-code rule both ways; these check that the two write the same rows.
"""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts import services
from accounts.models import PhoneCode
from accounts.services import code_hash
from notifications.models import Message

pytestmark = pytest.mark.django_db


def signup(api, phone, **extra):
    return api.post("/api/v1/auth/signup/", {"phone": phone}, format="json", **extra)


@pytest.mark.postgres
def test_both_ways_write_the_same_rows(api, settings, monkeypatch):
    """accounts_code_issue writes what the ORM would: every column but the keys and the times
    is the same as _code_issue's, and the times are as _code_issue sets them."""
    settings.OTP_DELIVERY_BACKENDS = ["file", "sms"]
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: 1234)
    assert signup(api, "+79990000001", REMOTE_ADDR="10.1.2.3").status_code == 200
    challenge = PhoneCode.objects.get()
    assert challenge.expires_at - challenge.created_at == timedelta(seconds=settings.OTP_TTL_S)
    assert all(m.created_at == m.updated_at == challenge.created_at for m in Message.objects.all())
    PhoneCode.objects.update(created_at=timezone.now() - timedelta(hours=2))  # out of the limits' way
    monkeypatch.setattr(services, "_issue_in_database", lambda: False)
    assert signup(api, "+79990000001", REMOTE_ADDR="10.1.2.3").status_code == 200

    times = {"id", "created_at", "updated_at", "expires_at"}
    by_function, by_python = (model_to_dict(c, exclude=times) for c in PhoneCode.objects.order_by("id"))
    assert by_function == by_python and by_function["code_hash"] == code_hash(phone="+79990000001", code="1234")
    messages = [
        {f.attname: getattr(m, f.attname) for f in Message._meta.concrete_fields if f.attname not in times}
        for m in Message.objects.order_by("id")
    ]
    assert len(messages) == 4
    assert messages[:2] == messages[2:]


def test_the_function_takes_every_outbox_column_it_does_not_set_itself():
    """accounts_code_issue lists the outbox's and the code's columns: a new one must be added there
    (a new migration replacing the function) and here."""
    set_by_function = {"id", "created_at", "updated_at"}
    left_null = {"claimed_at", "available_at", "sent_at"}
    message_fields = {f.attname for f in Message._meta.concrete_fields}
    assert message_fields == set(services.CODE_ISSUE_MESSAGE_FIELDS) | set_by_function | left_null
    for name in left_null:
        assert Message._meta.get_field(name).null
    code_fields = {f.attname for f in PhoneCode._meta.concrete_fields}
    assert code_fields == {"id", "phone", "code_hash", "ip", "created_at", "expires_at", "attempts", "consumed_at"}

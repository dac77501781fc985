"""project/db.insert: the row save() would write, with the statement built once per model."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import PhoneCode
from notifications.models import Message
from project import db
from project.db import insert

pytestmark = pytest.mark.django_db


def _row(model, pk):
    return model.objects.filter(pk=pk).values().get()


def _without(row, *keys):
    return {key: value for key, value in row.items() if key not in keys}


def test_insert_writes_the_row_save_writes():
    expires = timezone.now() + timedelta(minutes=5)
    saved = PhoneCode.objects.create(phone="+79990000001", code_hash="a" * 64, ip="10.0.0.1", expires_at=expires)
    inserted = PhoneCode(phone="+79990000001", code_hash="a" * 64, ip="10.0.0.1", expires_at=expires)
    before = timezone.now()
    insert(inserted)

    assert inserted.pk is not None and inserted.pk != saved.pk
    assert not inserted._state.adding and inserted._state.db == "default"
    got, want = _row(PhoneCode, inserted.pk), _row(PhoneCode, saved.pk)
    assert _without(got, "id", "created_at") == _without(want, "id", "created_at")
    assert before <= got["created_at"] <= timezone.now()  # auto_now_add, as save() sets it
    assert inserted.created_at == got["created_at"]


def test_insert_fills_defaults_and_auto_now_as_save_does():
    saved = Message.objects.create(channel="file", recipient="+79990000002", body="hello")
    inserted = Message(channel="file", recipient="+79990000002", body="hello")
    insert(inserted)
    got, want = _row(Message, inserted.pk), _row(Message, saved.pk)
    assert _without(got, "id", "created_at", "updated_at") == _without(want, "id", "created_at", "updated_at")
    assert got["status"] == Message.Status.PENDING and got["attempts"] == 0 and got["last_error"] == ""
    assert got["updated_at"] is not None and got["created_at"] is not None


def test_insert_is_one_statement_and_builds_it_once():
    db._inserts.clear()
    with CaptureQueriesContext(connection) as queries:
        for n in range(3):
            insert(Message(channel="file", recipient=f"+7999000001{n}", body="x"))
    assert len(queries) == 3
    assert all(q["sql"].startswith("INSERT INTO") and "RETURNING" in q["sql"] for q in queries)
    assert len(db._inserts) == 1


def test_insert_refuses_a_model_whose_key_is_not_generated():
    session = Session(session_key="k" * 32, session_data="", expire_date=timezone.now())
    with pytest.raises(TypeError, match="use save"):
        insert(session)


@pytest.mark.postgres
def test_insert_writes_rows_of_several_models_in_one_statement():
    expires = timezone.now() + timedelta(minutes=5)
    code = PhoneCode(phone="+79990000003", code_hash="b" * 64, expires_at=expires)
    first = Message(channel="file", recipient="+79990000003", body="one", sensitive=True)
    second = Message(channel="sms", recipient="+79990000003", body="two")
    with CaptureQueriesContext(connection) as queries:
        insert(code, first, second)
    assert len(queries) == 1 and queries[0]["sql"].startswith("WITH r0 AS (INSERT INTO")
    assert first.pk < second.pk and not code._state.adding and not second._state.adding
    assert _row(PhoneCode, code.pk)["code_hash"] == "b" * 64
    assert [(m["channel"], m["body"], m["sensitive"]) for m in Message.objects.order_by("id").values()] == [
        ("file", "one", True),
        ("sms", "two", False),
    ]

"""project/db: insert() writes the row save() would write, with the statement built once per model;
instance_from_row and columns read a raw row as the ORM would."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import PhoneCode, User
from notifications.models import Message
from project import db
from project.db import columns, insert, instance_from_row, value_from_db

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
    db._insert_statement.cache_clear()
    with CaptureQueriesContext(connection) as queries:
        for n in range(3):
            insert(Message(channel="file", recipient=f"+7999000001{n}", body="x"))
    assert len(queries) == 3
    assert all(q["sql"].startswith("INSERT INTO") and "RETURNING" in q["sql"] for q in queries)
    assert db._insert_statement.cache_info().currsize == 1


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


def _raw(model, pk, alias=""):
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(model._meta.db_table)
        cursor.execute(f"SELECT {columns(model, alias)} FROM {table} {alias} WHERE id = %s", [pk])
        return cursor.fetchone()


def test_instance_from_row_reads_a_raw_row_as_the_orm_does():
    user = User.objects.create_user(phone="+79990000031")
    message = Message.objects.create(channel="file", recipient="+79990000031", body="hi", claimed_at=timezone.now())
    for model, pk in ((User, user.pk), (Message, message.pk), (User, user.pk)):  # the second read is cached
        loaded = instance_from_row(model, _raw(model, pk, alias="t"))
        want = model.objects.get(pk=pk)
        assert type(loaded) is model and not loaded._state.adding and loaded._state.db == "default"
        for field in model._meta.concrete_fields:
            assert getattr(loaded, field.attname) == getattr(want, field.attname), field.name
    assert loaded.created_at.tzinfo is not None  # aware, as the ORM returns it on every backend


def test_value_from_db_converts_a_raw_value_as_the_orm_does():
    code = PhoneCode.objects.create(phone="+79990000032", code_hash="b" * 64, expires_at=timezone.now())
    created_at = PhoneCode._meta.get_field("created_at")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT created_at FROM {PhoneCode._meta.db_table} WHERE id = %s", [code.pk])
        (raw,) = cursor.fetchone()
    assert value_from_db(created_at, raw) == PhoneCode.objects.get(pk=code.pk).created_at


def test_instance_from_row_refuses_a_row_of_another_shape():
    user = User.objects.create_user(phone="+79990000033")
    with pytest.raises(ValueError, match="columns"):
        instance_from_row(User, _raw(User, user.pk)[:-1])


def test_columns_names_every_concrete_column_in_model_order():
    names = [f.column for f in Message._meta.concrete_fields]
    assert columns(Message) == ", ".join(connection.ops.quote_name(n) for n in names)
    assert columns(Message, "m") == ", ".join(f"m.{connection.ops.quote_name(n)}" for n in names)

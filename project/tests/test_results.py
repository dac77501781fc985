"""project/results.py: task results in one statement, written as django-celery-results writes them."""

import uuid

import pytest
from celery import states
from celery.app.task import Context
from celery.result import AsyncResult
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_celery_results.backends import DatabaseBackend as StockBackend
from django_celery_results.models import TaskResult

from project.celery import app
from project.results import DatabaseBackend

pytestmark = pytest.mark.postgres

COMPARED = [
    "status",
    "result",
    "traceback",
    "meta",
    "content_type",
    "content_encoding",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
    "periodic_task_name",
]


def _request(task_id: str) -> Context:
    return Context(
        id=task_id,
        task="notifications.tasks.message_deliver_task",
        args=[42],
        kwargs={},
        argsrepr="[42]",
        kwargsrepr="{}",
        hostname="worker1@host",
        delivery_info={},
    )


def _row(task_id: str) -> dict:
    return TaskResult.objects.filter(task_id=task_id).values().get()


def test_the_app_stores_results_with_this_backend():
    assert isinstance(app.backend, DatabaseBackend)


@pytest.mark.django_db(transaction=True)
def test_a_result_row_is_the_one_django_celery_results_writes():
    ours, stock = str(uuid.uuid4()), str(uuid.uuid4())
    app.backend.store_result(ours, "sent", states.SUCCESS, request=_request(ours))
    StockBackend(app=app).store_result(stock, "sent", states.SUCCESS, request=_request(stock))

    mine, theirs = _row(ours), _row(stock)
    assert {k: mine[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}
    assert mine["task_args"] == '"[42]"' and mine["worker"] == "worker1@host"
    assert mine["date_created"] == mine["date_done"] and mine["date_started"] is None
    # Read back the way callers read results.
    assert AsyncResult(ours, app=app).get(timeout=5) == "sent"
    assert AsyncResult(ours, app=app).state == states.SUCCESS


@pytest.mark.django_db(transaction=True)
def test_a_second_state_updates_the_same_row_and_keeps_its_creation_time():
    task_id = str(uuid.uuid4())
    app.backend.store_result(task_id, None, states.STARTED, request=_request(task_id))
    started = _row(task_id)
    assert started["status"] == states.STARTED and started["date_started"] is not None

    app.backend.store_result(task_id, "failed", states.SUCCESS, request=_request(task_id))
    done = _row(task_id)
    assert TaskResult.objects.filter(task_id=task_id).count() == 1
    assert done["status"] == states.SUCCESS and done["result"] == '"failed"'
    assert done["date_created"] == started["date_created"]
    assert done["date_started"] == started["date_started"]
    assert done["date_done"] > started["date_done"]


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_only_the_statements_own_commit_skips_the_wal_flush():
    task_id = str(uuid.uuid4())
    with CaptureQueriesContext(connection) as queries:
        app.backend.store_result(task_id, "sent", states.SUCCESS, request=_request(task_id))
    (insert,) = queries.captured_queries
    assert "ON CONFLICT" in insert["sql"] and "set_config('synchronous_commit', 'off', true)" in insert["sql"]
    assert _synchronous_commit() == "on"  # the session, and every later commit, stays durable


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_result_does_not_make_its_commit_skip_the_flush():
    task_id = str(uuid.uuid4())
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        app.backend.store_result(task_id, "sent", states.SUCCESS, request=_request(task_id))
        assert _synchronous_commit() == "on"
    assert "set_config" not in queries.captured_queries[0]["sql"]
    assert _row(task_id)["status"] == states.SUCCESS

"""project/postgresql: the per-request health check looks at the socket, and still catches a
connection the server ended; BEGIN goes with the transaction's first statement, and the
transaction holds everything Django's cursors run in it."""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.db import DataError, IntegrityError, ProgrammingError, connection, connections, transaction
from django.utils import timezone
from psycopg import IsolationLevel, pq

from project.postgresql.base import DatabaseWrapper
from tests.utils import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def wrapper(transactional_db):
    """A persistent connection of its own, as a gunicorn worker holds one between requests."""
    other = connections.create_connection("default")
    other.ensure_connection()
    yield other
    other.close()


def test_the_settings_use_this_backend():
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connections["default"].settings_dict["CONN_HEALTH_CHECKS"] is True


def test_an_idle_connection_is_usable_without_a_round_trip(wrapper, monkeypatch):
    def no_query(*args, **kwargs):
        raise AssertionError("the health check sent a query")

    monkeypatch.setattr(wrapper.connection, "cursor", no_query)
    assert wrapper.is_usable()


def _terminate(wrapper):
    pid = wrapper.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone() == (True,)


def test_a_connection_the_server_ended_is_not_usable(wrapper):
    _terminate(wrapper)
    wait_for(lambda: not wrapper.is_usable(), timeout=5)


def test_a_request_after_the_server_ended_the_connection_reconnects(wrapper):
    # What Django does at a request's first query (BaseDatabaseWrapper._cursor).
    old_pid = wrapper.connection.info.backend_pid
    _terminate(wrapper)
    wait_for(lambda: not wrapper.is_usable(), timeout=5)
    wrapper.health_check_done = False  # a new request (close_old_connections)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_a_connection_in_a_transaction_gets_djangos_check(wrapper):
    wrapper.set_autocommit(False)
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert wrapper.is_usable()  # SELECT 1 inside the open transaction
    wrapper.rollback()
    wrapper.set_autocommit(True)


def test_the_check_works_on_a_descriptor_above_1024(wrapper):
    # select() refuses descriptors from 1024 up; a process with many files open gets them.
    fd = wrapper.connection.pgconn.socket
    high = os.dup2(fd, 1500)
    try:
        wrapper.connection.fileno = lambda: high  # the same socket, seen through a high descriptor
        assert wrapper.is_usable()
    finally:
        os.close(high)


# --- BEGIN with the first statement ---------------------------------------------------------------


@pytest.fixture
def traced(transactional_db):
    """The default connection, with the messages it sends to the server: what sent() returns."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    fd, path = tempfile.mkstemp()
    pgconn.trace(fd)
    pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def sent():
        lines = Path(path).read_text().splitlines()
        return [[field.strip() for field in line.split("\t")[2:]] for line in lines if line.startswith("F\t")]

    yield sent
    pgconn.untrace()
    os.close(fd)
    os.unlink(path)


def _sessions():
    return set(Session.objects.values_list("session_key", flat=True))


def _session_row(key):
    return [key, "data", timezone.now() + timedelta(days=1)]


def test_a_first_statement_without_parameters_carries_begin(traced):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 42")
        assert cursor.fetchone() == (42,)  # the caller's statement, not BEGIN's
        cursor.execute("SELECT %s", [43])
        assert cursor.fetchone() == (43,)
    messages = [m[0] for m in traced()]
    queries = [m[1] for m in traced() if m[0] == "Query"]
    assert queries == ['"BEGIN; SELECT 42"', '"COMMIT"']
    assert messages.count("Sync") == 1  # the parameterised statement's one round trip


def test_a_first_statement_with_parameters_gets_begin_of_its_own(traced):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT %s", [42])
        assert cursor.fetchone() == (42,)
    assert [m[1] for m in traced() if m[0] == "Query"] == ['"BEGIN"', '"COMMIT"']


def test_a_transaction_without_statements_sends_nothing(traced):
    with transaction.atomic():
        assert not connection.get_autocommit()
    assert traced() == []


def test_the_advisory_locks_open_the_transaction_in_one_message(traced):
    from project.db import advisory_xact_lock

    with transaction.atomic():
        advisory_xact_lock((1, "+79990000000"), (2, "10.0.0.1"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            assert cursor.fetchone() == (2,)
    (first, *_) = [m[1] for m in traced() if m[0] == "Query"]
    assert first.startswith('"BEGIN; SELECT pg_advisory_xact_lock(1, ')


@pytest.mark.parametrize("first", ["literal", "parameters", "orm", "executemany", "copy", "savepoint"])
def test_a_rollback_undoes_the_first_statement_however_it_was_sent(transactional_db, first):
    key = f"rollback-{first}"
    with pytest.raises(RuntimeError, match="roll back"), transaction.atomic():
        with connection.cursor() as cursor:
            table = Session._meta.db_table
            if first == "literal":
                cursor.execute(f"INSERT INTO {table} VALUES ('{key}', 'data', now() + interval '1 day')")
            elif first == "parameters":
                cursor.execute(f"INSERT INTO {table} VALUES (%s, %s, %s)", _session_row(key))
            elif first == "orm":
                Session.objects.create(session_key=key, session_data="data", expire_date=timezone.now())
            elif first == "executemany":
                cursor.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", [_session_row(key)])
            elif first == "copy":
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    copy.write_row(_session_row(key))
            else:
                with transaction.atomic():  # SAVEPOINT, the transaction's first statement
                    Session.objects.create(session_key=key, session_data="data", expire_date=timezone.now())
            assert key in _sessions()
        raise RuntimeError("roll back")
    assert key not in _sessions()
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE


def test_psycopg_stays_in_autocommit_and_django_keeps_the_flag(transactional_db):
    connection.ensure_connection()
    assert connection.connection.autocommit and connection.get_autocommit()
    with transaction.atomic():
        assert connection.connection.autocommit and not connection.get_autocommit()
        Session.objects.exists()
        assert connection.connection.info.transaction_status == pq.TransactionStatus.INTRANS
    assert connection.get_autocommit()
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.parametrize("params", [None, ["x"]], ids=["literal", "parameters"])
def test_a_failed_first_statement_leaves_the_transaction_to_roll_back(transactional_db, params):
    error = ProgrammingError if params is None else DataError
    with pytest.raises(error), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column" if params is None else "SELECT %s::integer", params)
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert Session.objects.count() == 0  # the connection works on


def test_a_unique_violation_in_the_first_statement_is_djangos_integrity_error(transactional_db):
    Session.objects.create(session_key="taken", session_data="data", expire_date=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(session_key="taken", session_data="again", expire_date=timezone.now())
    with transaction.atomic():  # the connection works on, and so does the next transaction
        Session.objects.create(session_key="free", session_data="data", expire_date=timezone.now())
    assert _sessions() == {"taken", "free"}


@pytest.fixture(params=[True, False], ids=["server-side-binding", "client-side-binding"])
def configured(request, transactional_db):
    """A connection of its own with a serializable, read-only transaction configured, under
    either binding (DATABASE_SERVER_SIDE_BINDING)."""
    settings_dict = connections["default"].settings_dict
    options = {**settings_dict["OPTIONS"], "isolation_level": IsolationLevel.SERIALIZABLE}
    options["server_side_binding"] = request.param
    if not request.param:
        options.pop("prepare_threshold", None)
    other = DatabaseWrapper({**settings_dict, "OPTIONS": options}, "default")
    other.ensure_connection()
    other.connection.read_only = True
    yield other
    other.close()


@pytest.mark.parametrize("params", [None, ["transaction_isolation"]], ids=["literal", "parameters"])
def test_begin_carries_the_configured_transaction_characteristics(configured, params):
    configured.set_autocommit(False)  # what atomic() does
    try:
        with configured.cursor() as cursor:
            if params is None:
                cursor.execute("SELECT current_setting('transaction_isolation')")
            else:
                cursor.execute("SELECT current_setting(%s)", params)
            assert cursor.fetchone() == ("serializable",)
            cursor.execute("SELECT current_setting('transaction_read_only')")
            assert cursor.fetchone() == ("on",)
    finally:
        configured.rollback()
        configured.set_autocommit(True)


def test_a_named_cursor_holds_its_rows_only_outside_a_transaction(transactional_db):
    def holdable():
        cursor = connection.chunked_cursor()
        cursor.execute("SELECT 1")
        with connection.cursor() as other:
            other.execute("SELECT is_holdable FROM pg_cursors WHERE name = %s", [cursor.cursor.name])
            (hold,) = other.fetchone()
        cursor.close()
        return hold

    with transaction.atomic():
        assert holdable() is False  # a plain cursor, gone with its transaction
    assert holdable() is True  # outlives the implicit transaction of its DECLARE

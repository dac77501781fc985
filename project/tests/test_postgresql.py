"""project/postgresql: the per-request health check looks at the socket, and still catches a
connection the server ended."""

import pytest
from django.db import connection, connections

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
    from project.postgresql.base import DatabaseWrapper

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
    import os

    fd = wrapper.connection.pgconn.socket
    high = os.dup2(fd, 1500)
    try:
        wrapper.connection.fileno = lambda: high  # the same socket, seen through a high descriptor
        assert wrapper.is_usable()
    finally:
        os.close(high)

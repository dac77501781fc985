"""/health/ and /ready/ for the uptime monitor: no auth, cheap, and honest about what failed."""

import time

import pytest
from django.db import OperationalError

from notifications.tests.fakes import REDIS_TEST_PORT
from project import health
from tests.utils import PrivateRedis


@pytest.fixture
def private_broker(tmp_path, monkeypatch):
    """The Celery app pointed at a redis-server of this test's own, which it may stop
    (Celery reads CELERY_BROKER_URL from the environment before its settings)."""
    server = PrivateRedis(tmp_path, REDIS_TEST_PORT)
    server.start()
    monkeypatch.setenv("CELERY_BROKER_URL", server.url)
    yield server
    server.stop()


def test_health_answers_without_touching_the_database(client):
    # No django_db mark: any query would fail this test.
    response = client.get("/health/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.redis
def test_ready_answers_200_when_postgres_and_the_broker_answer(client, private_broker):
    response = client.get("/ready/")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.redis
def test_ready_answers_503_naming_the_broker_when_redis_is_stopped(client, private_broker):
    private_broker.stop()

    started = time.monotonic()
    response = client.get("/ready/")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["broker: ConnectionError"]}
    assert elapsed < 3  # a monitor's probe must not hang


def test_ready_answers_503_naming_the_database_when_it_does_not_answer(client, monkeypatch):
    class DeadConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", DeadConnection())
    monkeypatch.setattr(health, "_broker_ok", lambda: None)

    response = client.get("/ready/")

    assert response.status_code == 503
    assert response.json()["failing"] == ["database: OperationalError"]


def test_health_endpoints_need_no_login_and_are_not_cached(client, monkeypatch):
    monkeypatch.setattr(health, "_database_ok", lambda: None)
    monkeypatch.setattr(health, "_broker_ok", lambda: None)

    for path in ("/health/", "/ready/"):
        response = client.get(path)
        assert response.status_code == 200
        assert "no-cache" in response["Cache-Control"]

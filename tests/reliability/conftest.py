import logging
import os

import pytest

from tests.utils import PrivateRedis, database_url

from .servers import REDIS_PORT, Gunicorn, PgBouncer, PrivatePostgres, ProviderStandIn, pgbouncer_binary


@pytest.fixture
def app_server(transactional_db, settings, tmp_path):
    """`app_server(env={...})`: gunicorn serving the app on the test database (committed rows
    only: transactional_db). Stopped at the end of the test."""
    from django.db import connection

    started = []

    def start(*, env: dict | None = None, **kwargs) -> Gunicorn:
        base = {
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "SENT_MESSAGES_DIR": str(settings.SENT_MESSAGES_DIR),
            "DEBUG": "0",
        }
        server = Gunicorn(tmp_path, {**base, **(env or {})}, **kwargs)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path, REDIS_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def private_postgres():
    cluster = PrivatePostgres().init()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pgbouncer(transactional_db, settings):
    """PgBouncer (transaction mode, 5 server connections) in front of the test database; clients
    connect to `pgbouncer.url`. Skipped when it is not installed, a failure with REQUIRE_SERVICES=1."""
    if pgbouncer_binary() is None:
        reason = "needs pgbouncer: apt-get install pgbouncer"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    bouncer = PgBouncer(settings.DATABASES["default"])
    try:
        yield bouncer.start()
    finally:
        bouncer.destroy()


@pytest.fixture
def provider():
    """`provider(delay=...)`: the SMS provider stand-in (a local HTTP server)."""
    servers = []

    def start(**kwargs) -> ProviderStandIn:
        server = ProviderStandIn(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _quiet_http_client_log():
    """httpx logs every request at INFO; thousands of them bury a failure's output."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)

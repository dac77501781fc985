import pytest

from tests.utils import PrivateRedis

from .fakes import REDIS_TEST_PORT, FakeProvider


@pytest.fixture
def fake_provider():
    """`fake_provider(Reply(...), ...)`: a local HTTP server answering with those replies."""
    servers = []

    def start(*replies):
        server = FakeProvider(replies)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(tmp_path):
    redis_server = PrivateRedis(tmp_path, REDIS_TEST_PORT)
    redis_server.start()
    yield redis_server
    redis_server.stop()

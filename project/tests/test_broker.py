import pytest
from kombu import Queue

from project.broker import Channel
from project.celery import app

pytestmark = pytest.mark.redis


def test_a_redis_channel_sends_its_commands_through_one_client():
    # Guards project/broker.py against a kombu upgrade that stops calling the override.
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        assert channel._create_client() is channel._create_client()


def test_messages_published_through_the_shared_client_reach_the_queue():
    queue = Queue("broker-test-shared-client")
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        producer = app.amqp.Producer(channel)
        try:
            for n in range(3):
                producer.publish({"n": n}, routing_key=queue.name, declare=[queue], serializer="json")
                shared = channel._shared_client
                assert shared is not None, "kombu published without asking the channel for a client"
            received = [queue(channel).get(no_ack=True).payload for _ in range(3)]
        finally:
            queue(channel).delete()
    assert received == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert channel._shared_client is shared  # one client for all three publishes
    # The broker URL Flower reads keeps its scheme (it picks its broker API by it).
    assert app.connection_for_write().as_uri().startswith("redis://")

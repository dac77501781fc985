import base64
import copy
import json
import socket
import time

import pytest
import redis
from celery import Celery
from django.conf import settings
from kombu import Queue

from project import broker
from project.broker import Channel, task_send
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


# --- task_send: apply_async's message for less ---------------------------------------------------


def _pop(client, queue):
    """The message on the queue as a dict, its body decoded."""
    raw = client.rpop(queue)
    assert raw is not None, f"nothing on {queue}"
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def _ids_blanked(message):
    """The same message with the fields that differ between any two calls blanked."""
    message = copy.deepcopy(message)
    task_id = message["headers"]["id"]
    assert message["headers"]["root_id"] == message["properties"]["correlation_id"] == task_id
    for part, key in [("headers", "id"), ("headers", "root_id"), ("properties", "correlation_id")]:
        message[part][key] = "<task id>"
    message["properties"]["delivery_tag"] = "<tag>"
    return message


@pytest.fixture
def celery_queue():
    """The default queue's Redis list, emptied before and after (nothing consumes it here)."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = app.conf.task_default_queue
    client.delete(queue)
    yield client, queue
    client.delete(queue)
    client.close()


def test_task_send_queues_the_message_apply_async_queues(celery_queue):
    from notifications.tasks import message_deliver_task

    client, queue = celery_queue
    message_deliver_task.apply_async(args=[41])
    expected = _pop(client, queue)
    task_send(message_deliver_task, [41])
    sent = _pop(client, queue)
    assert broker._templates[message_deliver_task.name] is not None  # not apply_async again

    assert sent["headers"]["id"] != expected["headers"]["id"]  # each call its own id
    assert sent["properties"]["delivery_tag"] != expected["properties"]["delivery_tag"]
    assert _ids_blanked(sent) == _ids_blanked(expected)
    assert sent["body"] == [[41], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    assert sent["headers"]["argsrepr"] == "[41]"
    assert client.llen(queue) == 0


def test_task_send_builds_its_template_once_per_process(celery_queue, monkeypatch):
    from notifications.tasks import message_deliver_task

    client, queue = celery_queue
    broker._templates.clear()
    built = []
    real = broker._template
    monkeypatch.setattr(broker, "_template", lambda task: built.append(task.name) or real(task))
    for n in range(3):
        task_send(message_deliver_task, [n])
    assert built == [message_deliver_task.name]
    # A forked process (gunicorn's workers) builds its own: the origin header names the process.
    monkeypatch.setattr(broker.os, "getpid", lambda: -1)
    task_send(message_deliver_task, [3])
    assert built == [message_deliver_task.name] * 2
    assert [_pop(client, queue)["body"][0] for _ in range(4)] == [[0], [1], [2], [3]]


def test_task_send_leaves_tasks_it_cannot_copy_to_apply_async(monkeypatch):
    from notifications.tasks import message_deliver_task

    sent = []
    monkeypatch.setattr(message_deliver_task, "apply_async", lambda args: sent.append(args))
    monkeypatch.setattr(message_deliver_task, "expires", 60)  # each message would differ
    broker._templates.clear()
    task_send(message_deliver_task, [7])
    assert sent == [[7]]
    broker._templates.clear()


def test_task_send_inside_a_task_goes_through_apply_async(monkeypatch):
    # apply_async records the calling task as parent and root; the template has neither.
    from notifications.tasks import message_deliver_task

    sent = []
    monkeypatch.setattr(message_deliver_task, "apply_async", lambda args: sent.append(args))
    monkeypatch.setattr(type(app), "current_worker_task", property(lambda self: object()))
    task_send(message_deliver_task, [8])
    assert sent == [[8]]


def test_task_send_raises_at_once_when_the_broker_refuses():
    # message_publish turns the error into a pending row for the sweeper (notifications tests).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    closed = Celery("broker-down", broker=f"redis://127.0.0.1:{port}/0")
    closed.conf.update(broker_connection_timeout=1, broker_transport_options={"socket_connect_timeout": 1})

    @closed.task(name="broker-down.noop")
    def noop(n):
        return n

    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        task_send(noop, [1])
    assert "Connection refused" in str(caught.value) or isinstance(caught.value, ConnectionError)
    assert time.monotonic() - started < 5
